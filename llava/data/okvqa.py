"""Convert OK-VQA (official JSON + COCO images, or a local Hugging Face export) to LLaVA training data.

A thin front over the generic engine ``llava.data.vqa``: this file holds only
what is OK-VQA's own (file names, the COCO path rule, the ten-answer check,
the knowledge categories, the export layouts). Never touches the network::

    # official files: the four OK-VQA JSON files + COCO 2014 images, referenced in place
    python -m llava.data.okvqa --okvqa-dir data/okvqa --coco-dir data/coco \\
        --out playground/data/okvqa --val-size 500

    # a local Hugging Face export (parquet or arrow files with embedded images)
    python -m llava.data.okvqa --hf-train okvqa/train-*.parquet --hf-val okvqa/val-*.parquet

What lands in ``--out`` (default ``playground/data/okvqa``):

``train.json``, ``val.json``
    LLaVA training format: a JSON list sorted by question id, one record per
    line (shown spread out here)::

        {"id": "2971475",
         "image": "val2014/COCO_val2014_000000297147.jpg",
         "conversations": [
           {"from": "human", "value": "<image>\\nWhat sport can you use this for?\\n"
                                       "Answer the question using a single word or phrase."},
           {"from": "gpt", "value": "race"}],
         "question_id": 2971475,
         "answers": ["race", "race", "race", "race", "race", "race",
                     "motocross", "motocross", "ride", "ride"],
         "question_type": "one"}

    The target is the most common normalised answer
    (:func:`llava.eval.vqa_accuracy.most_common_answer`); all ten answers
    stay in ``answers``. Every human turn starts with ``<image>``.
``val_subset.json``
    With ``--val-size N``: N questions in the same format, drawn with
    ``--seed`` from val (default) or from train (``--val-from train``, whole
    images, which are then removed from ``train.json``). The callback scores
    them between epochs.
``val_questions.jsonl``
    One ``{"question_id", "image", "text"}`` per line (upstream
    ``model_vqa.py`` format, text = question + new line + suffix, no ``<image>``).
``val_annotations.json``
    What the scorer needs: ``{"format": "llava-okvqa-annotations/1", "split":
    "val2014", "questions": {"<question_id>": {"question": str, "answers":
    [10 str], "question_type": str}}}``.
``summary.json``
    Counts per split and category, what was skipped and why, the target
    length distribution and the folder to pass as ``--image_folder``.
``images/{train2014,val2014}/COCO_*.jpg``
    Only for Hugging Face exports: each embedded image written once per COCO
    image id. Official COCO images are referenced in place, not copied.

Every problem in the input (a question without an annotation, an annotation
without ten answers, an empty question, a duplicate question id, a missing or
unreadable image) is reported together in one error and fails the run, unless
the matching ``--skip-*`` flag drops those questions; the summary then counts
them. Outputs are written atomically, and a re-run on the same input writes
byte-identical files.

Python API: ``convert(ConvertConfig(...)) -> ConversionSummary``.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llava.data import vqa
from llava.data.vqa import (
    DEFAULT_PROMPT_SUFFIX,
    ConversionError,
    ConversionSummary,
    EmbeddedSource,
    Issue,
    Sample,
)
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
SPLITS = ("train", "val")
COCO_SPLITS = {"train": "train2014", "val": "val2014"}
QUESTION_FILES = {
    split: f"OpenEnded_mscoco_{COCO_SPLITS[split]}_questions.json" for split in SPLITS
}
ANNOTATION_FILES = {split: f"mscoco_{COCO_SPLITS[split]}_annotations.json" for split in SPLITS}
ANSWERS_PER_QUESTION = 10
_COCO_FILE_NAME = re.compile(r"COCO_(?:train|val)2014_0*(\d+)\.")

CATEGORIES = OKVQA_CATEGORIES  # the table lives with the annotation formats, in llava.metrics

# The engine's problem kinds in OK-VQA's words (shared-image checks do not apply here).
ISSUE_KINDS = {
    **{kind: entry for kind, entry in vqa.ISSUE_KINDS.items() if kind != "shared_image"},
    "bad_answers": ("--skip-bad-answers", "annotations without ten usable answers"),
}


def _help(text: str, **extra: Any) -> dict[str, Any]:
    return {"help": text, **extra}


@dataclass
class ConvertConfig:
    """Everything one conversion needs; the command line is generated from these fields."""

    out_dir: Path = field(
        default=Path(DEFAULT_OUT_DIR),
        metadata=_help(f"output folder (default: {DEFAULT_OUT_DIR})", aliases=["--out"]),
    )
    okvqa_dir: Path | None = field(
        default=None,
        metadata=_help(
            "folder with OpenEnded_mscoco_{train,val}2014_questions.json and "
            "mscoco_{train,val}2014_annotations.json"
        ),
    )
    coco_dir: Path | None = field(
        default=None, metadata=_help("folder with COCO 2014 train2014/ and val2014/ images")
    )
    hf_train: list[Path] = field(
        default_factory=list,
        metadata=_help(
            "train split export files (parquet/arrow) or folders of them "
            "(Multimodal-Fatima/OK-VQA_train, HuggingFaceM4/OK-VQA train)"
        ),
    )
    hf_val: list[Path] = field(
        default_factory=list,
        metadata=_help(
            "val2014 split export files or folders of them "
            "(Multimodal-Fatima/OK-VQA_test, lmms-lab/OK-VQA)"
        ),
    )
    splits: list[str] = field(
        default_factory=lambda: list(SPLITS),
        metadata=_help(
            "official files only: splits to convert (default: train val)", choices=SPLITS
        ),
    )
    prompt_suffix: str = field(
        default=DEFAULT_PROMPT_SUFFIX,
        metadata=_help(
            f"line appended to every question (default: {DEFAULT_PROMPT_SUFFIX!r}; '' for none)"
        ),
    )
    val_size: int = field(
        default=0,
        metadata=_help("questions carved into val_subset.json for evaluation between epochs"),
    )
    val_from: str = field(
        default="val",
        metadata=_help(
            "draw the subset from val, or from train (whole images, removed from train.json)",
            choices=SPLITS,
        ),
    )
    categories: list[str] | None = field(
        default=None,
        metadata=_help(
            "keep only these knowledge categories: codes (one ... ten, other), numbers (1-10) "
            "or names ('Plants and Animals', or just 'plants')"
        ),
    )
    limit: int | None = field(
        default=None, metadata=_help("keep the first N questions (by id) of each split")
    )
    seed: int = field(default=0, metadata=_help("seed of the subset draw"))
    skip_missing_annotations: bool = field(
        default=False, metadata=_help("drop questions without an annotation")
    )
    skip_bad_answers: bool = field(
        default=False, metadata=_help("drop questions without ten usable answers")
    )
    skip_bad_questions: bool = field(
        default=False,
        metadata=_help("drop questions with no text, an <image> tag in the text, or no image id"),
    )
    skip_duplicates: bool = field(
        default=False,
        metadata=_help(
            "drop repeated question ids (the first copy stays; the train copy of a val id goes)"
        ),
    )
    skip_bad_images: bool = field(
        default=False, metadata=_help("drop questions whose image is missing or unreadable")
    )
    check_images: bool = field(
        default=True,
        metadata=_help(
            "decode every image (--no-image-check: faster; missing images are still found)"
        ),
    )
    workers: int | None = field(
        default=None, metadata=_help("threads for the image check (default: 4 per CPU, at most 32)")
    )
    progress: bool | None = field(
        default=None, metadata=_help("progress bar: true, false, or (default) on a terminal only")
    )


def resolve_category(value: str) -> str:
    """An OK-VQA category code from a code ('one'), a number ('1'), a name or its first word.

    >>> resolve_category("Plants and Animals"), resolve_category("8"), resolve_category("plants")
    ('eight', 'eight', 'eight')
    """
    wanted = " ".join(str(value).lower().split())
    for position, (code, name) in enumerate(CATEGORIES.items(), start=1):
        first_word = name.split()[0].rstrip(",").lower()
        if wanted in (code, name.lower(), first_word) or (
            code != "other" and wanted == str(position)
        ):
            return code
    valid = ", ".join(f"{code} ({name})" for code, name in CATEGORIES.items())
    raise ValueError(
        f"unknown OK-VQA category {value!r}; use a code or a name: {valid}; codes {list(CATEGORIES)}"
    )


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


def _question_id(value: Any) -> int | str:
    """Question ids as ints where they are numbers (some exports store them as strings)."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return value
    text = str(value).strip()
    return int(text) if text.isdigit() else text


def _as_image_id(value: Any) -> int | None:
    """A COCO image id as an int (from an int or a digit string), else None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _sample(
    question_id: Any,
    image_id: int | None,
    question: Any,
    answers,
    question_type,
    split: str,
    source: str,
) -> Sample:
    """A Sample with the COCO path rule applied: train2014/COCO_train2014_{image_id:012d}.jpg."""
    sample = Sample(
        question_id=question_id,
        question=str(question or ""),
        answers=answers,
        question_type=question_type,
        split=split,
        source_file=source,
    )
    if image_id is not None:
        coco = COCO_SPLITS[split]
        sample.image = f"{coco}/COCO_{coco}_{image_id:012d}.jpg"
        sample.image_key = (split, image_id)
    return sample


# --------------------------------------------------------------------------
# Reading the official files.
# --------------------------------------------------------------------------


def _load_json(path: Path, key: str) -> list[dict]:
    """The list under ``key`` in an official OK-VQA file, with a clear error when it is not one."""
    try:
        with open(path, encoding="utf-8") as stream:
            data = json.load(stream)
    except (OSError, json.JSONDecodeError) as error:
        raise ConversionError(f"cannot read {path}: {error}") from error
    if not isinstance(data, dict) or not isinstance(data.get(key), list):
        raise ConversionError(f"{path} is not an OK-VQA file: it has no {key!r} list")
    return data[key]


def _read_official_split(
    okvqa_dir: Path, coco_dir: Path, split: str, issues: list[Issue]
) -> list[Sample]:
    """Questions of one split joined with their annotations; problems go to ``issues``."""
    question_path, annotation_path = (
        okvqa_dir / QUESTION_FILES[split],
        okvqa_dir / ANNOTATION_FILES[split],
    )
    questions, annotations = (
        _load_json(question_path, "questions"),
        _load_json(annotation_path, "annotations"),
    )
    by_id: dict[int | str, dict] = {}
    for annotation in annotations:
        question_id = _question_id(annotation.get("question_id"))
        if question_id in by_id:
            vqa.flag(
                issues, None, "duplicate_id", str(annotation_path), question_id, "annotated twice"
            )
            continue
        by_id[question_id] = annotation
    samples = []
    for question in questions:
        question_id = _question_id(question.get("question_id"))
        annotation = by_id.get(question_id)
        image_id = _as_image_id(question.get("image_id"))
        sample = _sample(
            question_id, image_id, question.get("question"), None, None, split, str(question_path)
        )
        samples.append(sample)
        if annotation is None:
            reason = f"not in {annotation_path.name}"
            vqa.flag(issues, sample, "missing_annotation", sample.source_file, question_id, reason)
            continue
        raw = annotation.get("answers")
        sample.answers = [vqa.answer_text(a) for a in raw] if isinstance(raw, list) else []
        sample.question_type = annotation.get("question_type")
        if image_id is None:
            vqa.flag(issues, sample, "bad_question", sample.source_file, question_id, "no image_id")
        else:
            sample.image_file = coco_dir / sample.image
    return samples


# --------------------------------------------------------------------------
# Reading Hugging Face exports (parquet / arrow): the layouts of docs/OKVQA.md.
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _HFLayout:
    """Which columns of an export hold what; detected from the column names."""

    name: str
    answers: str
    image_id: str | None
    question_type: str | None


def _detect_layout(path: Path, columns: Sequence[str]) -> _HFLayout:
    """Map an export's columns to the fields the converter needs (docs/OKVQA.md table)."""
    names = set(columns)
    answers = "answers_original" if "answers_original" in names else "answers"
    image_id = next((name for name in ("image_id", "id_image") if name in names), None)
    missing = [name for name in ("question_id", "question", "image", answers) if name not in names]
    if missing:
        raise ConversionError(
            f"{path}: cannot tell the OK-VQA layout: missing column(s) {', '.join(missing)}; "
            f"it has {', '.join(sorted(names))}. Expected the columns of Multimodal-Fatima/OK-VQA_*, "
            "HuggingFaceM4/OK-VQA or lmms-lab/OK-VQA (question_id, question, image, answers; "
            "see docs/OKVQA.md)."
        )
    if answers == "answers_original" and image_id == "id_image":
        name = "Multimodal-Fatima/OK-VQA"
    elif image_id is not None:
        name = "HuggingFaceM4/OK-VQA"
    else:
        name = "lmms-lab/OK-VQA"
    return _HFLayout(name, answers, image_id, "question_type" if "question_type" in names else None)


def _expand_files(entries: Sequence[str | Path]) -> list[Path]:
    """Files as given; a folder stands for the parquet and arrow files directly inside it."""
    files: list[Path] = []
    for entry in entries:
        path = Path(entry)
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.suffix in (".parquet", ".arrow")))
        else:
            files.append(path)
    return files


def _image_paths(path: Path) -> list[Any] | None:
    """The ``path`` field of the struct image column (without reading the bytes), or None."""
    import pyarrow as pa

    column_type = vqa._arrow_column_type(path, "image")
    if not pa.types.is_struct(column_type) or column_type.get_field_index("path") < 0:
        return None
    if vqa._is_parquet(path):
        import pyarrow.parquet as pq

        return pq.read_table(path, columns=["image.path"]).column(0).to_pylist()
    return [
        value
        for batch in vqa.arrow_batches(path, ["image"])
        for value in batch.column(0).field("path").to_pylist()
    ]


def _read_hf_split(
    files: Sequence[Path],
    split: str,
    issues: list[Issue],
    notes: list[str],
    sources: list[EmbeddedSource],
) -> list[Sample]:
    """Questions of one split from export files (metadata only; images are streamed later)."""
    samples = []
    derived = 0
    for path in files:
        layout = _detect_layout(path, vqa.read_schema_names(path))
        wanted = ["question_id", "question", layout.answers]
        wanted += [name for name in (layout.image_id, layout.question_type) if name]
        columns = vqa.read_arrow_columns(path, wanted)
        paths = (_image_paths(path) if layout.image_id is None else None) or [None] * len(
            columns["question_id"]
        )
        source_index = len(sources)
        sources.append(EmbeddedSource(path, "image", path.parent))
        notes.append(f"{path.name}: {layout.name} layout, {len(paths)} rows")
        for row, raw_id in enumerate(columns["question_id"]):
            question_id = _question_id(raw_id)
            raw_answers = columns[layout.answers][row]
            answers = None  # None: a missing annotation; a wrong shape becomes bad answers
            if raw_answers is not None:
                answers = (
                    [vqa.answer_text(a) for a in raw_answers]
                    if isinstance(raw_answers, list)
                    else []
                )
            if layout.image_id is not None:
                image_id = _as_image_id(columns[layout.image_id][row])
            else:
                match = _COCO_FILE_NAME.search(paths[row]) if isinstance(paths[row], str) else None
                image_id = int(match.group(1)) if match else None
                if image_id is None and isinstance(question_id, int):
                    image_id = question_id // 10  # OK-VQA question ids are image_id * 10 + k
                    derived += 1
            question_type = columns[layout.question_type][row] if layout.question_type else None
            sample = _sample(
                question_id,
                image_id,
                columns["question"][row],
                answers,
                question_type,
                split,
                str(path),
            )
            sample.embedded = (source_index, row)
            samples.append(sample)
            if raw_answers is None:
                vqa.flag(
                    issues,
                    sample,
                    "missing_annotation",
                    str(path),
                    question_id,
                    "no answers in the row",
                )
            if image_id is None:
                vqa.flag(
                    issues,
                    sample,
                    "bad_image",
                    str(path),
                    question_id,
                    "no COCO image id in the row",
                )
    if derived:
        notes.append(
            f"{split}: {derived} image ids derived from question ids (question_id // 10), "
            "as the export has no image id column"
        )
    return samples


# --------------------------------------------------------------------------
# The conversion.
# --------------------------------------------------------------------------


def _check_config(config: ConvertConfig) -> None:
    """Every problem with the options and input paths, raised together."""
    problems = []
    official = config.okvqa_dir is not None
    exported = bool(config.hf_train or config.hf_val)
    if official == exported:
        problems.append(
            "give either --okvqa-dir (with --coco-dir) or --hf-train/--hf-val, not both or neither"
        )
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
            problems.append(
                "--coco-dir is needed with --okvqa-dir (the folder holding train2014/ and val2014/)"
            )
        else:
            for split in splits:
                if not (Path(config.coco_dir) / COCO_SPLITS[split]).is_dir():
                    problems.append(
                        f"missing COCO image folder {Path(config.coco_dir) / COCO_SPLITS[split]}"
                    )
    if exported:
        for path in _expand_files(list(config.hf_train) + list(config.hf_val)):
            if not path.is_file():
                problems.append(f"missing export file {path}")
        for option, entries in (("--hf-train", config.hf_train), ("--hf-val", config.hf_val)):
            if entries and not _expand_files(entries):
                problems.append(
                    f"{option} names no parquet or arrow file: {list(map(str, entries))}"
                )
    present = (
        splits
        if official
        else [s for s, e in (("train", config.hf_train), ("val", config.hf_val)) if e]
    )
    if config.val_from not in SPLITS:
        problems.append(f"--val-from must be train or val, got {config.val_from!r}")
    elif config.val_size and config.val_from not in present:
        problems.append(
            f"--val-from {config.val_from} needs the {config.val_from} split in the input"
        )
    if config.val_size < 0:
        problems.append(f"--val-size must be 0 or more, got {config.val_size}")
    if config.limit is not None and config.limit <= 0:
        problems.append(f"--limit must be positive, got {config.limit}")
    if config.workers is not None and config.workers <= 0:
        problems.append(f"--workers must be positive, got {config.workers}")
    for value in config.categories or ():
        try:
            resolve_category(value)
        except ValueError as error:
            problems.append(str(error))
    if problems:
        raise ConversionError(
            "invalid OK-VQA conversion options:\n" + "\n".join(f"- {p}" for p in problems)
        )


def _select(
    samples_by_split: dict[str, list[Sample]], config: ConvertConfig
) -> dict[str, list[Sample]]:
    """Problem-free samples, category filter, sorted by question id, then the per-split limit."""
    codes = _category_codes(config.categories)
    kept = {}
    for split, samples in samples_by_split.items():
        chosen = [s for s in samples if s.problem is None]
        if codes is not None:
            chosen = [s for s in chosen if _category_of(s.question_type) in codes]
        chosen.sort(key=lambda s: vqa.id_sort_key(s.question_id))
        kept[split] = chosen[: config.limit] if config.limit is not None else chosen
    return kept


def _skipped_kinds(config: ConvertConfig) -> set[str]:
    """The issue kinds the --skip-* flags turn from errors into dropped questions."""
    flags = {
        "missing_annotation": config.skip_missing_annotations,
        "bad_answers": config.skip_bad_answers,
        "bad_question": config.skip_bad_questions,
        "duplicate_id": config.skip_duplicates,
        "bad_image": config.skip_bad_images,
    }
    return {kind for kind, on in flags.items() if on}


def convert(config: ConvertConfig) -> ConversionSummary:
    """Convert OK-VQA as ``config`` says and write the outputs; see the module docstring.

    Raises ConversionError (listing every problem at once) when the options are
    wrong or the input has problems that no --skip-* flag covers; no JSON
    output is written then (embedded images already extracted may stay in
    images/, where the next run reuses them).
    """
    _check_config(config)
    issues: list[Issue] = []
    notes: list[str] = []
    sources: list[EmbeddedSource] = []
    out_dir = Path(config.out_dir)
    if config.okvqa_dir is not None:
        okvqa_dir, coco_dir = Path(config.okvqa_dir), Path(config.coco_dir)  # type: ignore[arg-type]
        read = {
            s: _read_official_split(okvqa_dir, coco_dir, s, issues)
            for s in SPLITS
            if s in config.splits
        }
        image_folder = coco_dir.resolve()
    else:
        files = {
            s: _expand_files(e)
            for s, e in (("train", config.hf_train), ("val", config.hf_val))
            if e
        }
        read = {s: _read_hf_split(paths, s, issues, notes, sources) for s, paths in files.items()}
        image_folder = (out_dir / vqa.IMAGES_DIR).resolve()
    vqa.check_text(read, issues, ANSWERS_PER_QUESTION)
    kept = _select(read, config)
    every = [s for samples in kept.values() for s in samples]
    skipped_kinds = _skipped_kinds(config)
    if config.okvqa_dir is not None:
        vqa.check_image_files(every, config.check_images, config.workers, config.progress, issues)
    else:
        will_fail = any(issue.kind not in skipped_kinds for issue in issues)
        reencoded = vqa.extract_embedded(
            every,
            sources,
            out_dir / vqa.IMAGES_DIR,
            decode=config.check_images,
            write=not will_fail,
            to_jpeg=True,
            workers=config.workers,
            progress=config.progress,
            issues=issues,
        )
        if reencoded:
            notes.append(f"{reencoded} embedded images were not JPEG and were re-encoded as JPEG")
    vqa.raise_failing(issues, skipped_kinds, "OK-VQA", ISSUE_KINDS)
    kept = {split: [s for s in samples if s.problem is None] for split, samples in kept.items()}
    outputs, val_subset = vqa.with_val_subset(kept, config.val_size, config.val_from, config.seed)
    written = vqa.write_outputs(out_dir, outputs, config.prompt_suffix, COCO_SPLITS["val"])
    summary = ConversionSummary(
        source="official" if config.okvqa_dir is not None else "huggingface",
        out_dir=str(out_dir.resolve()),
        image_folder=str(image_folder),
        image_check="decoded" if config.check_images else "presence only",
        prompt_suffix=config.prompt_suffix,
        splits={
            name: vqa.split_stats(samples, list(CATEGORIES)) for name, samples in outputs.items()
        },
        files=written,
        skipped=vqa.skipped_summary(issues),
        filters={"categories": _category_codes(config.categories), "limit": config.limit},
        val_subset=val_subset,
        notes=notes,
    )
    write_atomic(out_dir / "summary.json", vqa.dump_json(summary.to_dict()))
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
    return vqa.build_parser(
        ConvertConfig,
        "python -m llava.data.okvqa",
        "Convert OK-VQA to LLaVA training data (train.json, val.json), the model_vqa question "
        "file and the scorer's annotations. The target of each question is its most common "
        "normalised answer; all ten answers are kept. Every input problem is reported at once "
        "and fails the run unless a --skip-* flag drops those questions. Never uses the network.",
        _EXAMPLES,
        negations={"--no-image-check": "check_images", "--no-progress": "progress"},
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the converter; prints the summary, or every problem on stderr. Returns the exit status."""
    config = vqa.parse_config(build_parser(), argv)
    try:
        summary = convert(config)
    except ConversionError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(summary.format())
    return 0


if __name__ == "__main__":
    sys.exit(main())
