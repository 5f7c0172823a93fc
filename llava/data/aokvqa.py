"""Convert A-OKVQA (official JSON + COCO 2017 images) to LLaVA training data.

A thin front over the generic converter: this file holds only what is
A-OKVQA's own (file names, the COCO 2017 path rule, the ten direct answers, the
four choices). Never touches the network::

    python -m llava.data.aokvqa --aokvqa-dir data/aokvqa --coco-dir data/coco \\
        --out playground/data/aokvqa --val-size 500

The inputs, the extra fields it writes (``choices``, ``correct_choice_idx``,
``val_questions_mc.jsonl``) and how to score both tasks: docs/CUSTOM_DATA.md ("A-OKVQA").
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from llava.data import conversion, image_files, output_files
from llava.data.conversion import ConversionError, ConversionSummary, Issue, Sample
from llava.metrics.choices import choice_prompt
from llava.utils import JsonFileError, load_json_file, write_atomic

__all__ = ["DEFAULT_OUT_DIR", "AokvqaConfig", "build_parser", "convert", "main"]

DEFAULT_OUT_DIR = "playground/data/aokvqa"
SPLITS = ("train", "val")
COCO_SPLITS = {"train": "train2017", "val": "val2017"}
ANNOTATION_FILES = {split: f"aokvqa_v1p0_{split}.json" for split in SPLITS}
DIRECT_ANSWERS = 10
CHOICES = 4
ISSUE_KINDS = {
    **{kind: entry for kind, entry in conversion.ISSUE_KINDS.items() if kind != "shared_image"},
    "bad_answers": (
        "--skip-bad-answers",
        "questions without ten direct answers, four choices and a correct choice",
    ),
}


@dataclass
class AokvqaConfig:
    """One A-OKVQA conversion; the command line is generated from these fields."""

    out_dir: Path = conversion.option(
        Path(DEFAULT_OUT_DIR), f"output folder (default: {DEFAULT_OUT_DIR})", aliases=["--out"]
    )
    aokvqa_dir: Path | None = conversion.option(None, "folder with aokvqa_v1p0_train.json and aokvqa_v1p0_val.json")
    coco_dir: Path | None = conversion.option(None, "folder with COCO 2017 train2017/ and val2017/ images")
    splits: list[str] = conversion.option(
        text="splits to convert (default: train val)", choices=SPLITS, factory=lambda: list(SPLITS)
    )
    prompt_suffix: str = conversion.option(
        conversion.DEFAULT_PROMPT_SUFFIX, "line appended to every direct-answer question ('' for none)"
    )
    val_size: int = conversion.option(0, "questions carved into val_subset.json (whole images)")
    val_from: str = conversion.option(
        "val", "draw the subset from val, or from train (removed from train.json)", choices=SPLITS
    )
    limit: int | None = conversion.option(None, "keep the first N questions (by id) of each split")
    seed: int = conversion.option(0, "seed of the subset draw")
    skip_bad_answers: bool = conversion.option(
        False, "drop questions without ten direct answers, four choices and a valid correct_choice_idx"
    )
    skip_bad_questions: bool = conversion.option(False, "drop questions with no text, an <image> tag or no image id")
    skip_duplicates: bool = conversion.option(False, "drop repeated question ids (the first copy stays)")
    skip_bad_images: bool = conversion.option(False, "drop questions whose image is missing or unreadable")
    check_images: bool = conversion.option(
        True, "decode every image (off: only checks that the files exist)", flag="image_check"
    )
    workers: int | None = conversion.option(None, "threads for the image check")
    progress: bool | None = conversion.option(None, "progress bar (default: on a terminal only)")


def _choices_problem(entry: dict) -> str:
    """Why an entry's choices are unusable ('' when fine)."""
    choices, index = entry.get("choices"), entry.get("correct_choice_idx")
    if not isinstance(choices, list) or len(choices) != CHOICES:
        return f"{len(choices) if isinstance(choices, list) else 'no'} choices (need {CHOICES})"
    if not all(isinstance(choice, str) and choice.strip() for choice in choices):
        return "a choice that is not text"
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < CHOICES:
        return f"correct_choice_idx {index!r} is not 0-{CHOICES - 1}"
    return ""


def _read_split(aokvqa_dir: Path, coco_dir: Path, split: str, issues: list[Issue]) -> list[Sample]:
    """The questions of one split; problems go to ``issues``."""
    path = aokvqa_dir / ANNOTATION_FILES[split]
    try:
        entries = load_json_file(path)
    except OSError as error:
        raise ConversionError(f"cannot read {path}: {error}") from error
    except JsonFileError as error:
        raise ConversionError(str(error)) from None
    if not isinstance(entries, list):
        raise ConversionError(f"{path} is not an A-OKVQA file: it is not a JSON list")
    samples = []
    coco = COCO_SPLITS[split]
    for index, entry in enumerate(entries):
        entry = entry if isinstance(entry, dict) else {}
        question_id = entry.get("question_id")
        question_id = str(question_id) if question_id not in (None, "") else f"item {index + 1}"
        raw = entry.get("direct_answers")
        answers = [conversion.answer_text(a) for a in raw] if isinstance(raw, list) else []
        sample = Sample(
            question_id=question_id,
            question=str(entry.get("question") or ""),
            answers=answers,
            question_type="",
            split=split,
            source_file=str(path),
        )
        samples.append(sample)
        image_id = entry.get("image_id")
        if isinstance(image_id, str) and image_id.strip().isdigit():
            image_id = int(image_id)
        if isinstance(image_id, bool) or not isinstance(image_id, int):
            conversion.flag(issues, sample, "bad_question", str(path), question_id, "no image_id")
        else:
            sample.image = f"{coco}/{image_id:012d}.jpg"
            sample.image_key = (split, image_id)
            sample.image_file = coco_dir / sample.image
        problem = _choices_problem(entry)
        if problem:
            conversion.flag(issues, sample, "bad_answers", str(path), question_id, problem)
            sample.answers = None  # one problem per question is enough
            continue
        rationales = entry.get("rationales")
        sample.extra = {
            "choices": list(entry["choices"]),
            "correct_choice_idx": entry["correct_choice_idx"],
            "rationales": [str(r) for r in rationales] if isinstance(rationales, list) else [],
        }
    return samples


def _check_config(config: AokvqaConfig) -> None:
    """Every problem with the options and input paths, raised together."""
    problems = []
    splits = [s for s in config.splits if s in SPLITS]
    if not splits or len(splits) != len(config.splits):
        problems.append(f"--splits must name train and/or val, got {list(config.splits)}")
    if config.aokvqa_dir is None:
        problems.append("--aokvqa-dir is needed (the folder with aokvqa_v1p0_{train,val}.json)")
    else:
        for split in splits:
            if not (Path(config.aokvqa_dir) / ANNOTATION_FILES[split]).is_file():
                problems.append(
                    f"missing {Path(config.aokvqa_dir) / ANNOTATION_FILES[split]} (see docs/CUSTOM_DATA.md)"
                )
    if config.coco_dir is None:
        problems.append("--coco-dir is needed (the folder holding train2017/ and val2017/)")
    else:
        problems += conversion.coco_folder_problems(config.coco_dir, [COCO_SPLITS[s] for s in splits])
    problems += conversion.option_problems(config.val_size, config.workers, config.limit, config.val_from, splits)
    conversion.raise_option_problems(problems, "A-OKVQA")


def convert(config: AokvqaConfig) -> ConversionSummary:
    """Convert A-OKVQA as ``config`` says and write the outputs; see the module docstring."""
    _check_config(config)
    issues: list[Issue] = []
    aokvqa_dir, coco_dir = Path(config.aokvqa_dir), Path(config.coco_dir)  # type: ignore[arg-type]
    read = {s: _read_split(aokvqa_dir, coco_dir, s, issues) for s in SPLITS if s in config.splits}
    conversion.check_text(read, issues, DIRECT_ANSWERS)
    kept = {}
    for split, samples in read.items():
        chosen = sorted((s for s in samples if s.problem is None), key=lambda s: str(s.question_id))
        kept[split] = chosen[: config.limit] if config.limit is not None else chosen
    every = [s for samples in kept.values() for s in samples]
    image_files.check_image_files(every, config.check_images, config.workers, config.progress, issues)
    skipped_kinds = conversion.skipped_kinds(config)
    conversion.raise_failing(issues, skipped_kinds, "A-OKVQA", ISSUE_KINDS)
    kept = {split: [s for s in samples if s.problem is None] for split, samples in kept.items()}
    outputs, val_subset = output_files.with_val_subset(kept, config.val_size, config.val_from, config.seed)
    out_dir = Path(config.out_dir)
    written = output_files.write_outputs(
        out_dir,
        outputs,
        config.prompt_suffix,
        "val",
        annotation_fields=("choices", "correct_choice_idx"),
        mc_prompt=lambda s: choice_prompt(s.question, s.extra["choices"]),
    )
    summary = ConversionSummary(
        source="official",
        out_dir=str(out_dir.resolve()),
        image_folder=str(coco_dir.resolve()),
        image_check="decoded" if config.check_images else "presence only",
        prompt_suffix=config.prompt_suffix,
        splits={name: output_files.split_stats(samples) for name, samples in outputs.items()},
        files=written,
        skipped=conversion.skipped_summary(issues),
        filters={"limit": config.limit},
        val_subset=val_subset,
    )
    write_atomic(out_dir / "summary.json", conversion.dump_json(summary.to_dict()))
    return summary


_EXAMPLES = """\
examples:
  python -m llava.data.aokvqa --aokvqa-dir data/aokvqa --coco-dir data/coco --val-size 500
  python -m llava.data.aokvqa --aokvqa-dir data/aokvqa --coco-dir data/coco --splits val --no-image-check

then train with --data_path OUT/train.json --image_folder <the folder the summary names>, and score
with python -m llava.eval.eval_vqa --answers FILE --annotations OUT/val_annotations.json
(--task multiple-choice for answers to val_questions_mc.jsonl). See docs/CUSTOM_DATA.md.
"""


def build_parser():
    """The command line of ``python -m llava.data.aokvqa`` (one flag per AokvqaConfig field)."""
    return conversion.build_parser(
        AokvqaConfig,
        "python -m llava.data.aokvqa",
        "Convert A-OKVQA to LLaVA training data, the direct-answer and multiple-choice question "
        "files and the scorer's annotations. Every input problem is reported at once and fails "
        "the run unless a --skip-* flag drops those questions. Never uses the network.",
        _EXAMPLES,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the converter; prints the summary, or every problem on stderr. Returns the exit status."""
    return conversion.run_converter(build_parser(), convert, argv, "A-OKVQA", "llava.eval.eval_vqa")


if __name__ == "__main__":
    from llava.entry import run

    sys.exit(run(main))
