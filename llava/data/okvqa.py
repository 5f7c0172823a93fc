"""Convert OK-VQA (official JSON + COCO images, or a local Hugging Face export) to LLaVA training data.

A thin front over the generic converter (``llava.data.vqa`` and its shared
modules): this file holds only what is OK-VQA's own (file names, the COCO path
rule, the ten-answer check, the knowledge categories, the export layouts).
Never touches the network::

    python -m llava.data.okvqa --okvqa-dir data/okvqa --coco-dir data/coco \\
        --out playground/data/okvqa --val-size 500
    python -m llava.data.okvqa --hf-train okvqa/train-*.parquet --hf-val okvqa/val-*.parquet

The files it writes, the checks and the metric: docs/OKVQA.md.
Python API: ``convert(ConvertConfig(...)) -> ConversionSummary``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from llava.data import conversion, image_files, okvqa_readers, output_files, tables
from llava.data.conversion import (
    DEFAULT_PROMPT_SUFFIX,
    ConversionError,
    ConversionSummary,
    EmbeddedSource,
    Issue,
    Sample,
)
from llava.data.okvqa_readers import ANNOTATION_FILES, COCO_SPLITS, QUESTION_FILES, SPLITS
from llava.metrics.annotations import ANNOTATIONS_FORMAT, OKVQA_CATEGORIES
from llava.utils import write_atomic

__all__ = [
    "ANNOTATIONS_FORMAT",
    "CATEGORIES",
    "DEFAULT_OUT_DIR",
    "DEFAULT_PROMPT_SUFFIX",
    "ConversionError",
    "ConversionSummary",
    "ConvertConfig",
    "Issue",
    "build_parser",
    "convert",
    "main",
    "resolve_category",
    "write_atomic",
]

DEFAULT_OUT_DIR = "playground/data/okvqa"
ANSWERS_PER_QUESTION = 10

CATEGORIES = OKVQA_CATEGORIES  # the table lives with the annotation formats, in llava.metrics

# The engine's problem kinds in OK-VQA's words (shared-image checks do not apply here).
ISSUE_KINDS = {
    **{kind: entry for kind, entry in conversion.ISSUE_KINDS.items() if kind != "shared_image"},
    "bad_answers": ("--skip-bad-answers", "annotations without ten usable answers"),
}


@dataclass
class ConvertConfig:
    """Everything one conversion needs; the command line is generated from these fields."""

    out_dir: Path = conversion.option(
        Path(DEFAULT_OUT_DIR), f"output folder (default: {DEFAULT_OUT_DIR})", aliases=["--out"]
    )
    okvqa_dir: Path | None = conversion.option(
        None, "folder with OpenEnded_mscoco_{train,val}2014_questions.json and mscoco_{train,val}2014_annotations.json"
    )
    coco_dir: Path | None = conversion.option(None, "folder with COCO 2014 train2014/ and val2014/ images")
    hf_train: list[Path] = conversion.option(
        text="train split export files (parquet/arrow) or folders of them "
        "(Multimodal-Fatima/OK-VQA_train, HuggingFaceM4/OK-VQA train)",
        factory=list,
    )
    hf_val: list[Path] = conversion.option(
        text="val2014 split export files or folders of them (Multimodal-Fatima/OK-VQA_test, lmms-lab/OK-VQA)",
        factory=list,
    )
    splits: list[str] = conversion.option(
        text="official files only: splits to convert (default: train val)", choices=SPLITS, factory=lambda: list(SPLITS)
    )
    prompt_suffix: str = conversion.option(
        DEFAULT_PROMPT_SUFFIX, f"line appended to every question (default: {DEFAULT_PROMPT_SUFFIX!r}; '' for none)"
    )
    val_size: int = conversion.option(0, "questions carved into val_subset.json for evaluation between epochs")
    val_from: str = conversion.option(
        "val", "draw the subset from val, or from train (whole images, removed from train.json)", choices=SPLITS
    )
    categories: list[str] | None = conversion.option(
        None,
        "keep only these knowledge categories: codes (one ... ten, other), numbers (1-10) "
        "or names ('Plants and Animals', or just 'plants')",
    )
    limit: int | None = conversion.option(None, "keep the first N questions (by id) of each split")
    seed: int = conversion.option(0, "seed of the subset draw")
    skip_missing_annotations: bool = conversion.option(False, "drop questions without an annotation")
    skip_bad_answers: bool = conversion.option(False, "drop questions without ten usable answers")
    skip_bad_questions: bool = conversion.option(
        False, "drop questions with no text, an <image> tag in the text, or no image id"
    )
    skip_duplicates: bool = conversion.option(
        False, "drop repeated question ids (the first copy stays; the train copy of a val id goes)"
    )
    skip_bad_images: bool = conversion.option(False, "drop questions whose image is missing or unreadable")
    check_images: bool = conversion.option(
        True, "decode every image (off: faster; missing images are still found)", flag="image_check"
    )
    workers: int | None = conversion.option(None, "threads for the image check (default: 4 per CPU, at most 32)")
    progress: bool | None = conversion.option(None, "progress bar (default: on a terminal only)")


def resolve_category(value: str) -> str:
    """An OK-VQA category code from a code ('one'), a number ('1'), a name or its first word.

    >>> resolve_category("Plants and Animals"), resolve_category("8"), resolve_category("plants")
    ('eight', 'eight', 'eight')
    """
    wanted = " ".join(str(value).lower().split())
    for position, (code, name) in enumerate(CATEGORIES.items(), start=1):
        first_word = name.split()[0].rstrip(",").lower()
        if wanted in (code, name.lower(), first_word) or (code != "other" and wanted == str(position)):
            return code
    valid = ", ".join(f"{code} ({name})" for code, name in CATEGORIES.items())
    raise ValueError(f"unknown OK-VQA category {value!r}; use a code or a name: {valid}; codes {list(CATEGORIES)}")


def _category_of(question_type: str | None) -> str | None:
    """The category code of a record's question_type, or the raw value when it is not one."""
    if question_type is None:
        return None
    try:
        return resolve_category(question_type)
    except ValueError:
        return str(question_type)


def _category_codes(categories: Sequence[str] | None) -> list[str] | None:
    """The requested categories as codes in the official order, or None for all."""
    if not categories:
        return None
    codes = {resolve_category(value) for value in categories}
    return [code for code in CATEGORIES if code in codes]


# --------------------------------------------------------------------------
# The conversion.
# --------------------------------------------------------------------------


def _check_config(config: ConvertConfig) -> None:
    """Every problem with the options and input paths, raised together."""
    problems = []
    official = config.okvqa_dir is not None
    exported = bool(config.hf_train or config.hf_val)
    if official == exported:
        problems.append("give either --okvqa-dir (with --coco-dir) or --hf-train/--hf-val, not both or neither")
    splits = list(config.splits)
    if not splits or any(split not in SPLITS for split in splits):
        problems.append(f"--splits must name train and/or val, got {splits}")
    splits = [s for s in splits if s in SPLITS]
    if official:
        for split in splits:
            for name in (QUESTION_FILES[split], ANNOTATION_FILES[split]):
                if not (Path(config.okvqa_dir) / name).is_file():  # type: ignore[arg-type]
                    problems.append(
                        f"missing {Path(config.okvqa_dir) / name} "  # type: ignore[arg-type]
                        "(download it from the OK-VQA site, see docs/OKVQA.md)"
                    )
        if config.coco_dir is None:
            problems.append("--coco-dir is needed with --okvqa-dir (the folder holding train2014/ and val2014/)")
        else:
            problems += conversion.coco_folder_problems(config.coco_dir, [COCO_SPLITS[s] for s in splits])
    if exported:
        for path in tables.table_files(list(config.hf_train) + list(config.hf_val)):
            if not path.is_file():
                problems.append(f"missing export file {path}")
        for option, entries in (("--hf-train", config.hf_train), ("--hf-val", config.hf_val)):
            if entries and not tables.table_files(entries):
                problems.append(f"{option} names no parquet or arrow file: {list(map(str, entries))}")
    present = splits if official else [s for s, e in (("train", config.hf_train), ("val", config.hf_val)) if e]
    problems += conversion.option_problems(config.val_size, config.workers, config.limit, config.val_from, present)
    for value in config.categories or ():
        try:
            resolve_category(value)
        except ValueError as error:
            problems.append(str(error))
    conversion.raise_option_problems(problems, "OK-VQA")


def _select(samples_by_split: dict[str, list[Sample]], config: ConvertConfig) -> dict[str, list[Sample]]:
    """Problem-free samples, category filter, sorted by question id, then the per-split limit."""
    codes = _category_codes(config.categories)
    kept = {}
    for split, samples in samples_by_split.items():
        chosen = [s for s in samples if s.problem is None]
        if codes is not None:
            before = len(chosen)
            chosen = [s for s in chosen if _category_of(s.question_type) in codes]
            if before and not chosen:  # a filter that keeps nothing is a mistake, not an empty success
                raise ConversionError(
                    f"--categories {' '.join(config.categories or [])}: no {split} question is in them "
                    f"(of {before}); check the names (python -m llava.data.okvqa --help lists them)"
                )
        chosen.sort(key=lambda s: conversion.id_sort_key(s.question_id))
        kept[split] = chosen[: config.limit] if config.limit is not None else chosen
    return kept


def convert(config: ConvertConfig) -> ConversionSummary:
    """Convert OK-VQA as ``config`` says and write the outputs; see the module docstring.

    Raises ConversionError (listing every problem at once) when the options are
    wrong or the input has problems that no --skip-* flag covers; nothing is
    written then (embedded images this run extracted are removed again).
    """
    with image_files.new_files_removed_on_error(Path(config.out_dir) / conversion.IMAGES_DIR):
        return _convert(config)


def _convert(config: ConvertConfig) -> ConversionSummary:
    _check_config(config)
    issues: list[Issue] = []
    notes: list[str] = []
    sources: list[EmbeddedSource] = []
    out_dir = Path(config.out_dir)
    if config.okvqa_dir is not None:
        okvqa_dir, coco_dir = Path(config.okvqa_dir), Path(config.coco_dir)  # type: ignore[arg-type]
        read = {
            s: okvqa_readers.read_official_split(okvqa_dir, coco_dir, s, issues) for s in SPLITS if s in config.splits
        }
        image_folder = coco_dir.resolve()
    else:
        files = {s: tables.table_files(e) for s, e in (("train", config.hf_train), ("val", config.hf_val)) if e}
        read = {s: okvqa_readers.read_hf_split(paths, s, issues, notes, sources) for s, paths in files.items()}
        image_folder = (out_dir / conversion.IMAGES_DIR).resolve()
    conversion.check_text(read, issues, ANSWERS_PER_QUESTION)
    kept = _select(read, config)
    every = [s for samples in kept.values() for s in samples]
    skipped_kinds = conversion.skipped_kinds(config)
    if config.okvqa_dir is not None:
        image_files.check_image_files(every, config.check_images, config.workers, config.progress, issues)
    else:
        will_fail = any(issue.kind not in skipped_kinds for issue in issues)
        reencoded = image_files.extract_embedded(
            every,
            sources,
            out_dir / conversion.IMAGES_DIR,
            decode=config.check_images,
            write=not will_fail,
            to_jpeg=True,
            workers=config.workers,
            progress=config.progress,
            issues=issues,
        )
        if reencoded:
            notes.append(f"{reencoded} embedded images were not JPEG and were re-encoded as JPEG")
    conversion.raise_failing(issues, skipped_kinds, "OK-VQA", ISSUE_KINDS)
    kept = {split: [s for s in samples if s.problem is None] for split, samples in kept.items()}
    outputs, val_subset = output_files.with_val_subset(kept, config.val_size, config.val_from, config.seed)
    written = output_files.write_outputs(out_dir, outputs, config.prompt_suffix, COCO_SPLITS["val"])
    summary = ConversionSummary(
        source="official" if config.okvqa_dir is not None else "huggingface",
        out_dir=str(out_dir.resolve()),
        image_folder=str(image_folder),
        image_check="decoded" if config.check_images else "presence only",
        prompt_suffix=config.prompt_suffix,
        splits={name: output_files.split_stats(samples, list(CATEGORIES)) for name, samples in outputs.items()},
        files=written,
        skipped=conversion.skipped_summary(issues),
        filters={"categories": _category_codes(config.categories), "limit": config.limit},
        val_subset=val_subset,
        notes=notes,
    )
    write_atomic(out_dir / "summary.json", conversion.dump_json(summary.to_dict()))
    return summary


# --------------------------------------------------------------------------
# Command line (generated from ConvertConfig).
# --------------------------------------------------------------------------

_EXAMPLES = """\
examples:
  # official OK-VQA JSON files + COCO 2014 images (referenced in place, not copied)
  python -m llava.data.okvqa --okvqa-dir data/okvqa --coco-dir data/coco

  # the same with a 500-question evaluation subset carved from train (disjoint by image)
  python -m llava.data.okvqa --okvqa-dir data/okvqa --coco-dir data/coco \\
      --val-size 500 --val-from train --seed 0

  # a local Hugging Face export (parquet or arrow with embedded images)
  python -m llava.data.okvqa --hf-train okvqa/OK-VQA_train/*.parquet \\
      --hf-val okvqa/OK-VQA_test/*.parquet --out playground/data/okvqa

  # a quick subset: two knowledge categories, 200 questions per split, no image decoding
  python -m llava.data.okvqa --okvqa-dir data/okvqa --coco-dir data/coco \\
      --categories one "Plants and Animals" --limit 200 --no-image-check

then train with --data_path OUT/train.json --image_folder <the folder the summary names>,
and score with python -m llava.eval.eval_okvqa --answers FILE --annotations OUT/val_annotations.json.
See docs/OKVQA.md for where to download the data and for the metric.
"""


def build_parser():
    """The command line of ``python -m llava.data.okvqa`` (one flag per ConvertConfig field)."""
    return conversion.build_parser(
        ConvertConfig,
        "python -m llava.data.okvqa",
        "Convert OK-VQA to LLaVA training data (train.json, val.json), the model_vqa question "
        "file and the scorer's annotations. The target of each question is its most common "
        "normalised answer; all ten answers are kept. Every input problem is reported at once "
        "and fails the run unless a --skip-* flag drops those questions. Never uses the network.",
        _EXAMPLES,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the converter; prints the summary, or every problem on stderr. Returns the exit status."""
    return conversion.run_converter(build_parser(), convert, argv)


if __name__ == "__main__":
    from llava.entry import run

    sys.exit(run(main))
