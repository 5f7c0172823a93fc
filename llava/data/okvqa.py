"""Convert OK-VQA (official JSON + COCO images, or a local Hugging Face export) to LLaVA training data.

Never touches the network. Run it as a module::

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

import argparse
import concurrent.futures
import io
import json
import os
import random
import re
import sys
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from llava.constants import DEFAULT_IMAGE_TOKEN
from llava.eval.vqa_accuracy import most_common_answer
from llava.utils import write_atomic

__all__ = [
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
DEFAULT_PROMPT_SUFFIX = "Answer the question using a single word or phrase."
ANNOTATIONS_FORMAT = "llava-okvqa-annotations/1"

SPLITS = ("train", "val")
COCO_SPLITS = {"train": "train2014", "val": "val2014"}
QUESTION_FILES = {
    split: f"OpenEnded_mscoco_{COCO_SPLITS[split]}_questions.json" for split in SPLITS
}
ANNOTATION_FILES = {split: f"mscoco_{COCO_SPLITS[split]}_annotations.json" for split in SPLITS}

# OK-VQA knowledge categories: question_type code -> name.
CATEGORIES = {
    "one": "Vehicles and Transportation",
    "two": "Brands, Companies and Products",
    "three": "Objects, Material and Clothing",
    "four": "Sports and Recreation",
    "five": "Cooking and Food",
    "six": "Geography, History, Language and Culture",
    "seven": "People and Everyday Life",
    "eight": "Plants and Animals",
    "nine": "Science and Technology",
    "ten": "Weather and Climate",
    "other": "Other",
}

# Kinds of input problems, in report order: kind -> (the flag that skips it, what it means).
ISSUE_KINDS = {
    "missing_annotation": ("--skip-missing-annotations", "questions without an annotation"),
    "bad_answers": ("--skip-bad-answers", "annotations without ten usable answers"),
    "bad_question": (
        "--skip-bad-questions",
        "questions with no text, an '<image>' tag or no image id",
    ),
    "duplicate_id": ("--skip-duplicates", "duplicate question ids"),
    "bad_image": ("--skip-bad-images", "questions whose image is missing or unreadable"),
}
ANSWERS_PER_QUESTION = 10
# How many ids an error message or the printed summary lists before "... and N more".
LISTED_IDS = 20
# Every file name this converter may write in --out; stale ones from an earlier run are removed.
OUTPUT_FILES = (
    "train.json",
    "val.json",
    "val_subset.json",
    "val_questions.jsonl",
    "val_annotations.json",
    "summary.json",
)
IMAGES_DIR = "images"
_JPEG_MAGIC = b"\xff\xd8\xff"
_COCO_FILE_NAME = re.compile(r"COCO_(?:train|val)2014_0*(\d+)\.")
# Rows read per batch when streaming an embedded image column.
_IMAGE_BATCH_ROWS = 64


# --------------------------------------------------------------------------
# Configuration, problems, summary.
# --------------------------------------------------------------------------


@dataclass
class ConvertConfig:
    """Everything one conversion needs; the command line maps onto these fields one to one."""

    out_dir: str | Path = DEFAULT_OUT_DIR
    """Folder for train.json, val.json, ... (created if missing)."""
    okvqa_dir: str | Path | None = None
    """Folder holding the four official OK-VQA JSON files under their official names."""
    coco_dir: str | Path | None = None
    """Folder holding COCO 2014 train2014/ and val2014/ (needed with okvqa_dir)."""
    hf_train: Sequence[str | Path] = ()
    """Local Hugging Face export files (parquet or arrow) or folders of them, train split."""
    hf_val: Sequence[str | Path] = ()
    """Local Hugging Face export files (parquet or arrow) or folders of them, val2014 split."""
    splits: Sequence[str] = SPLITS
    """Official files only: which splits to convert (train, val)."""
    prompt_suffix: str = DEFAULT_PROMPT_SUFFIX
    """Instruction appended to every question on its own line ('' for none)."""
    val_size: int = 0
    """Questions to carve into val_subset.json for evaluation between epochs (0: none)."""
    val_from: str = "val"
    """Where the subset comes from: 'val', or 'train' (whole images, removed from train.json)."""
    categories: Sequence[str] | None = None
    """Keep only these knowledge categories (codes like 'one' or names); None keeps all."""
    limit: int | None = None
    """Keep the first N questions (by question id) of each split, after the category filter."""
    seed: int = 0
    """Seed of the val subset draw."""
    skip_missing_annotations: bool = False
    """Drop questions without an annotation instead of failing."""
    skip_bad_answers: bool = False
    """Drop questions whose annotation lacks ten usable answers instead of failing."""
    skip_bad_questions: bool = False
    """Drop questions with no text, an "<image>" tag in the text or no image id instead of failing."""
    skip_duplicates: bool = False
    """Drop repeated question ids (the first copy stays; a train copy of a val id goes)."""
    skip_bad_images: bool = False
    """Drop questions whose image is missing or unreadable instead of failing."""
    check_images: bool = True
    """Decode every image (in parallel) to find unreadable ones; False only checks presence."""
    workers: int | None = None
    """Threads for the image check (default: 4 per CPU, at most 32)."""
    progress: bool | None = None
    """Show a progress bar for the image check (None: only on a terminal)."""


@dataclass(frozen=True)
class Issue:
    """One problem in the input: its kind, the file it is in, the question id, and why."""

    kind: str
    file: str
    question_id: int | str
    reason: str = ""


class ConversionError(Exception):
    """The input has problems (all listed in the message) or the configuration is wrong."""

    def __init__(self, message: str, issues: Sequence[Issue] = ()):
        super().__init__(message)
        self.issues = list(issues)


@dataclass
class ConversionSummary:
    """What a conversion did; also written as summary.json."""

    source: str
    """'official' or 'huggingface'."""
    out_dir: str
    image_folder: str
    """Pass this as --image_folder: every record's "image" is relative to it."""
    image_check: str
    """'decoded' (every image opened) or 'presence only' (--no-image-check)."""
    prompt_suffix: str
    splits: dict[str, dict[str, Any]]
    """Per output split: questions, images, per_category counts, target_words distribution."""
    files: dict[str, str]
    """Output kind -> file name inside out_dir."""
    skipped: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Issue kind -> {"flag", "count", "question_ids"} for every kind dropped by a --skip-* flag."""
    filters: dict[str, Any] = field(default_factory=dict)
    val_subset: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The summary as plain JSON-ready data (fixed key order)."""
        return asdict(self)

    def format(self) -> str:
        """A human-readable report: counts, skips, target lengths and how to use the output."""
        out = Path(self.out_dir)
        lines = [f"OK-VQA converted ({self.source} input) -> {self.out_dir}"]
        for name, stats in self.splits.items():
            file_name = self.files.get(name, "")
            lines.append(
                f"  {name:<11}{stats['questions']:>7} questions {stats['images']:>7} images"
                f"  -> {file_name}"
            )
        if self.val_subset:
            lines.append(
                f"  val subset drawn from {self.val_subset['from']} with seed {self.val_subset['seed']}"
                f" ({self.val_subset['size']} of {self.val_subset['requested']} requested)"
            )
        for name, stats in self.splits.items():
            categories = ", ".join(
                f"{code} {count}" for code, count in stats["per_category"].items()
            )
            lines.append(f"  {name} per category: {categories or '-'}")
        for name, stats in self.splits.items():
            total = stats["questions"] or 1
            lengths = ", ".join(
                f"{words} word{'s' if words != '1' else ''} {100 * count / total:.1f}%"
                for words, count in stats["target_words"].items()
            )
            lines.append(f"  {name} target length: {lengths or '-'}")
        if self.skipped:
            for kind, entry in self.skipped.items():
                what = ISSUE_KINDS[kind][1]
                lines.append(
                    f"  skipped {entry['count']} {what} ({entry['flag']}): "
                    f"{_list_ids(entry['question_ids'])}"
                )
        else:
            lines.append("  skipped nothing")
        lines.append(f"  images: {self.image_check}")
        lines.extend(f"  note: {note}" for note in self.notes)
        if "train" in self.files:
            lines.append(
                f"Train with: --data_path {out / self.files['train']} --image_folder {self.image_folder}"
            )
        if "val_annotations" in self.files:
            lines.append(
                f"Score with: python -m llava.eval.eval_okvqa --answers ANSWERS.jsonl "
                f"--annotations {out / self.files['val_annotations']}"
            )
        return "\n".join(lines)


@dataclass
class _Sample:
    """One question as read from the input, before it becomes an output record."""

    question_id: int | str
    image_id: int | None
    question: str
    answers: list[str] | None
    question_type: str | None
    split: str
    source_file: str
    # Official input: the image file; embedded input: (file index, row index) of its row.
    image_file: Path | None = None
    image_row: tuple[int, int] | None = None
    target: str = ""
    problem: str | None = None
    """The first problem found with this sample; such samples never reach the output."""

    @property
    def image(self) -> str:
        """The image path relative to the image folder, e.g. train2014/COCO_train2014_....jpg."""
        coco_split = COCO_SPLITS[self.split]
        return f"{coco_split}/COCO_{coco_split}_{self.image_id:012d}.jpg"


# --------------------------------------------------------------------------
# Small helpers.
# --------------------------------------------------------------------------


def resolve_category(value: str) -> str:
    """An OK-VQA category code from a code ('one'), a number ('1'), a name or its first word.

    >>> resolve_category("Plants and Animals"), resolve_category("8"), resolve_category("plants")
    ('eight', 'eight', 'eight')
    """
    wanted = " ".join(str(value).lower().split())
    codes = list(CATEGORIES)
    for position, (code, name) in enumerate(CATEGORIES.items(), start=1):
        first_word = name.split()[0].rstrip(",").lower()
        if wanted in (code, name.lower(), first_word) or (
            code != "other" and wanted == str(position)
        ):
            return code
    valid = ", ".join(f"{code} ({name})" for code, name in CATEGORIES.items())
    raise ValueError(
        f"unknown OK-VQA category {value!r}; use a code or a name: {valid}; codes {codes}"
    )


def _category_of(question_type: str | None) -> str | None:
    """The category code of a record's question_type, or the raw value when it is not one."""
    if question_type is None:
        return None
    try:
        return resolve_category(question_type)
    except ValueError:
        return str(question_type)


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


def _id_sort_key(question_id: int | str) -> tuple[int, int, str]:
    """Numbers first in numeric order, then text ids."""
    if isinstance(question_id, int):
        return (0, question_id, "")
    return (1, 0, question_id)


def _list_ids(ids: Sequence[Any], limit: int = LISTED_IDS) -> str:
    """'1, 2, 3' or '1, 2, ... and 40 more'."""
    shown = ", ".join(str(item) for item in ids[:limit])
    return shown + (f", ... and {len(ids) - limit} more" if len(ids) > limit else "")


def _human_turn(question: str, suffix: str) -> str:
    """The human turn: image token, question, and the suffix on its own line."""
    return "\n".join(part for part in (DEFAULT_IMAGE_TOKEN, question, suffix) if part)


def _question_text(question: str, suffix: str) -> str:
    """The model_vqa question text: question and suffix, no image token."""
    return "\n".join(part for part in (question, suffix) if part)


def _dump_json(data: Any) -> str:
    """Stable JSON text: two-space indent, UTF-8 characters as they are, final new line."""
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def _dump_json_lines(items: Sequence[Any]) -> str:
    """A JSON list with one compact item per line: valid JSON, diffable, and fast to write.

    (json.dumps with ``indent`` runs the pure-Python encoder, several times slower
    on the 14k OK-VQA records; each line here goes through the C encoder.)
    """
    if not items:
        return "[]\n"
    return "[\n" + ",\n".join(json.dumps(item, ensure_ascii=False) for item in items) + "\n]\n"


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


# --------------------------------------------------------------------------
# Reading the official files.
# --------------------------------------------------------------------------


def _answer_text(answer: Any) -> str | None:
    """The text of one answer: a string as is, a dict's 'answer' (else 'raw_answer')."""
    if isinstance(answer, str):
        return answer
    if isinstance(answer, dict):
        for key in ("answer", "raw_answer"):
            if isinstance(answer.get(key), str):
                return answer[key]
    return None


def _read_official_split(
    okvqa_dir: Path, coco_dir: Path, split: str, issues: list[Issue]
) -> list[_Sample]:
    """Questions of one split joined with their annotations; problems go to ``issues``."""
    question_path = okvqa_dir / QUESTION_FILES[split]
    annotation_path = okvqa_dir / ANNOTATION_FILES[split]
    questions = _load_json(question_path, "questions")
    annotations = _load_json(annotation_path, "annotations")

    by_id: dict[int | str, dict] = {}
    for annotation in annotations:
        question_id = _question_id(annotation.get("question_id"))
        if question_id in by_id:
            _flag(
                issues, None, "duplicate_id", str(annotation_path), question_id, "annotated twice"
            )
            continue
        by_id[question_id] = annotation

    samples = []
    for question in questions:
        question_id = _question_id(question.get("question_id"))
        annotation = by_id.get(question_id)
        sample = _Sample(
            question_id=question_id,
            image_id=_as_image_id(question.get("image_id")),
            question=str(question.get("question") or ""),
            answers=None,
            question_type=None,
            split=split,
            source_file=str(question_path),
        )
        samples.append(sample)
        if annotation is None:
            _flag(
                issues,
                sample,
                "missing_annotation",
                sample.source_file,
                question_id,
                f"not in {annotation_path.name}",
            )
            continue
        raw_answers = annotation.get("answers")
        sample.answers = (
            [_answer_text(a) for a in raw_answers] if isinstance(raw_answers, list) else []
        )
        sample.question_type = annotation.get("question_type")
        if sample.image_id is None:
            _flag(
                issues,
                sample,
                "bad_question",
                sample.source_file,
                question_id,
                "no image_id",
            )
        else:
            sample.image_file = coco_dir / sample.image
    return samples


# --------------------------------------------------------------------------
# Reading Hugging Face exports (parquet / arrow).
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _HFLayout:
    """Which columns of an export hold what; detected from the column names."""

    name: str
    question_id: str
    question: str
    image: str
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
    return _HFLayout(
        name=name,
        question_id="question_id",
        question="question",
        image="image",
        answers=answers,
        image_id=image_id,
        question_type="question_type" if "question_type" in names else None,
    )


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


def _is_parquet(path: Path) -> bool:
    """Parquet by extension, else by its magic bytes."""
    if path.suffix == ".parquet":
        return True
    if path.suffix == ".arrow":
        return False
    with open(path, "rb") as stream:
        return stream.read(4) == b"PAR1"


def _open_arrow(path: Path):
    """An arrow IPC reader for a file in the file format or the stream format (datasets cache)."""
    import pyarrow as pa

    source = pa.memory_map(str(path))
    try:
        return pa.ipc.open_file(source)
    except pa.ArrowInvalid:
        source = pa.memory_map(str(path))
        return pa.ipc.open_stream(source)


def _arrow_batches(path: Path, columns: Sequence[str]) -> Iterator[Any]:
    """Record batches of an arrow file restricted to ``columns`` (memory-mapped, no copy)."""
    reader = _open_arrow(path)
    if hasattr(reader, "num_record_batches"):
        batches: Iterable[Any] = (reader.get_batch(i) for i in range(reader.num_record_batches))
    else:
        batches = reader
    for batch in batches:
        yield batch.select(list(columns))


def _read_schema_names(path: Path) -> list[str]:
    """Column names of a parquet or arrow file."""
    import pyarrow.parquet as pq

    if _is_parquet(path):
        return list(pq.read_schema(path).names)
    return list(_open_arrow(path).schema.names)


def _read_columns(path: Path, columns: Sequence[str]) -> dict[str, list]:
    """Selected columns of a parquet or arrow file as Python lists (the image column excluded)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if _is_parquet(path):
        table = pq.read_table(path, columns=list(columns))
    else:
        table = pa.Table.from_batches(list(_arrow_batches(path, columns)))
    return {name: table.column(name).to_pylist() for name in columns}


def _image_batches(path: Path, column: str) -> Iterator[Any]:
    """The image column of a file, batch by batch (bytes stay in arrow until asked for)."""
    import pyarrow.parquet as pq

    if _is_parquet(path):
        for batch in pq.ParquetFile(path).iter_batches(
            batch_size=_IMAGE_BATCH_ROWS, columns=[column]
        ):
            yield batch.column(0)
    else:
        for batch in _arrow_batches(path, [column]):
            yield batch.column(0)


def _image_id_from_path(path: Any) -> int | None:
    """The COCO id in a file name such as COCO_val2014_000000297147.jpg."""
    if not isinstance(path, str):
        return None
    match = _COCO_FILE_NAME.search(path)
    return int(match.group(1)) if match else None


def _read_hf_split(
    files: Sequence[Path], split: str, issues: list[Issue], notes: list[str]
) -> list[_Sample]:
    """Questions of one split from export files (metadata only; images are streamed later)."""
    samples = []
    derived = 0
    for file_index, path in enumerate(files):
        layout = _detect_layout(path, _read_schema_names(path))
        wanted = [layout.question_id, layout.question, layout.answers]
        wanted += [name for name in (layout.image_id, layout.question_type) if name]
        columns = _read_columns(path, wanted)
        image_paths: list[Any] = [None] * len(columns[layout.question_id])
        if layout.image_id is None:
            # Only the small path field of the image struct, to recover the COCO id from a file name.
            table_column = _read_image_path_column(path, layout.image)
            if table_column is not None:
                image_paths = table_column
        notes.append(f"{path.name}: {layout.name} layout, {len(image_paths)} rows")
        for row, raw_id in enumerate(columns[layout.question_id]):
            question_id = _question_id(raw_id)
            raw_answers = columns[layout.answers][row]
            answers = None  # None: a missing annotation; a wrong shape becomes bad answers
            if raw_answers is not None:
                answers = (
                    [_answer_text(answer) for answer in raw_answers]
                    if isinstance(raw_answers, list)
                    else []
                )
            if layout.image_id is not None:
                image_id = _as_image_id(columns[layout.image_id][row])
            else:
                image_id = _image_id_from_path(image_paths[row])
                if image_id is None and isinstance(question_id, int):
                    image_id = question_id // 10  # OK-VQA question ids are image_id * 10 + k
                    derived += 1
            sample = _Sample(
                question_id=question_id,
                image_id=image_id,
                question=str(columns[layout.question][row] or ""),
                answers=answers,
                question_type=columns[layout.question_type][row] if layout.question_type else None,
                split=split,
                source_file=str(path),
                image_row=(file_index, row),
            )
            samples.append(sample)
            if raw_answers is None:
                _flag(
                    issues,
                    sample,
                    "missing_annotation",
                    str(path),
                    question_id,
                    "no answers in the row",
                )
            if image_id is None:
                _flag(
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


def _read_image_path_column(path: Path, column: str) -> list[Any] | None:
    """The ``path`` field of a struct image column (without reading the bytes), or None."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if _is_parquet(path):
        column_type = pq.read_schema(path).field(column).type
        if not pa.types.is_struct(column_type) or column_type.get_field_index("path") < 0:
            return None
        return pq.read_table(path, columns=[f"{column}.path"]).column(0).to_pylist()
    values: list[Any] = []
    for batch in _arrow_batches(path, [column]):
        array = batch.column(0)
        if not pa.types.is_struct(array.type) or array.type.get_field_index("path") < 0:
            return None
        values.extend(array.field("path").to_pylist())
    return values


# --------------------------------------------------------------------------
# Validation of the text: answers, questions, duplicate ids.
# --------------------------------------------------------------------------


def _flag(
    issues: list[Issue], sample: _Sample | None, kind: str, file: str, question_id: Any, reason: str
) -> None:
    """Record a problem; the sample (if any) is then left out of the output."""
    issues.append(Issue(kind, file, question_id, reason))
    if sample is not None and sample.problem is None:
        sample.problem = kind


def _check_text(samples_by_split: dict[str, list[_Sample]], issues: list[Issue]) -> None:
    """Flag bad answers, bad questions and duplicate ids, and set each good sample's target."""
    for split, samples in samples_by_split.items():
        seen: set[int | str] = set()
        for sample in samples:
            file = sample.source_file
            if sample.question_id in seen:
                _flag(
                    issues,
                    sample,
                    "duplicate_id",
                    file,
                    sample.question_id,
                    f"repeated in the {split} split",
                )
                continue
            seen.add(sample.question_id)
            question = sample.question.strip()
            if not question:
                _flag(issues, sample, "bad_question", file, sample.question_id, "empty question")
            elif DEFAULT_IMAGE_TOKEN in question:
                _flag(
                    issues,
                    sample,
                    "bad_question",
                    file,
                    sample.question_id,
                    f"{DEFAULT_IMAGE_TOKEN} in the question",
                )
            sample.question = question
            if sample.answers is None:
                continue  # already flagged as a missing annotation
            reason = _answers_problem(sample)
            if reason:
                _flag(issues, sample, "bad_answers", file, sample.question_id, reason)
    if "train" in samples_by_split and "val" in samples_by_split:
        val_ids = {sample.question_id for sample in samples_by_split["val"]}
        for sample in samples_by_split["train"]:
            if sample.question_id in val_ids and sample.problem != "duplicate_id":
                _flag(
                    issues,
                    sample,
                    "duplicate_id",
                    sample.source_file,
                    sample.question_id,
                    "also a val question id",
                )


def _answers_problem(sample: _Sample) -> str:
    """Why a sample's answers are unusable ('' when they are fine); sets the target when fine."""
    answers = sample.answers or []
    if len(answers) != ANSWERS_PER_QUESTION:
        return f"{len(answers)} answers"
    for position, answer in enumerate(answers, start=1):
        if answer is None:
            return f"answer {position} is not text"
    sample.target = most_common_answer(answers)
    if not sample.target:
        return "no answer left after normalisation"
    return ""


# --------------------------------------------------------------------------
# Images: checking (in parallel) and, for exports, writing.
# --------------------------------------------------------------------------


def _decode(stream: Any) -> None:
    """Decode an image fully (JPEGs at 1/8 scale: the whole file is still read)."""
    from PIL import Image

    with Image.open(stream) as image:
        if image.format == "JPEG":
            image.draft("RGB", (max(1, image.width // 8), max(1, image.height // 8)))
        image.load()


def _check_image_file(path: Path) -> str | None:
    """None when the image file decodes, else why not ('missing', 'unreadable: ...')."""
    try:
        _decode(path)
    except FileNotFoundError:
        return "missing"
    except (OSError, SyntaxError, ValueError) as error:
        return f"unreadable: {error}"
    return None


def _prepare_embedded(data: bytes | None, decode: bool) -> tuple[str | None, bytes | None, bool]:
    """(problem, JPEG bytes to write, re-encoded?) for an embedded image.

    JPEG bytes are kept as they are; other formats (PNG exports) are decoded and
    re-encoded as JPEG at quality 95 so that every file is what its name says.
    """
    if not data:
        return "missing", None, False
    is_jpeg = data.startswith(_JPEG_MAGIC)
    if is_jpeg and not decode:
        return None, data, False
    try:
        if is_jpeg:
            _decode(io.BytesIO(data))
            return None, data, False
        from PIL import Image

        with Image.open(io.BytesIO(data)) as image:
            buffer = io.BytesIO()
            image.convert("RGB").save(buffer, format="JPEG", quality=95)
        return None, buffer.getvalue(), True
    except (OSError, SyntaxError, ValueError) as error:
        return f"unreadable: {error}", None, False


def _progress_bar(total: int, progress: bool | None, description: str):
    """A tqdm bar; shown on a terminal by default."""
    from tqdm import tqdm

    return tqdm(
        total=total,
        desc=description,
        unit="img",
        disable=None if progress is None else not progress,
    )


def _default_workers() -> int:
    """Image checks are I/O plus C decoding that releases the GIL: 4 threads per CPU, at most 32."""
    return min(32, 4 * (os.cpu_count() or 1))


def _check_official_images(
    kept: dict[str, list[_Sample]], config: ConvertConfig, issues: list[Issue]
) -> None:
    """Find every image the kept questions use (one listing per folder), decode each once in threads."""
    users: dict[Path, list[_Sample]] = {}
    for samples in kept.values():
        for sample in samples:
            assert sample.image_file is not None
            users.setdefault(sample.image_file, []).append(sample)
    listings: dict[Path, set[str]] = {}
    for folder in {path.parent for path in users}:
        listings[folder] = set(os.listdir(folder)) if folder.is_dir() else set()
    problems: dict[Path, str] = {}
    present = []
    for path in users:
        if path.name in listings[path.parent]:
            present.append(path)
        else:
            problems[path] = "missing"
    if config.check_images:
        workers = config.workers or _default_workers()
        with (
            concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool,
            _progress_bar(len(present), config.progress, "checking images") as bar,
        ):
            for path, problem in zip(present, pool.map(_check_image_file, present), strict=True):
                bar.update(1)
                if problem:
                    problems[path] = problem
    for path in sorted(problems):
        for sample in users[path]:
            reason = f"{sample.image} {problems[path]}"
            _flag(issues, sample, "bad_image", sample.source_file, sample.question_id, reason)


def _embedded_value(array: Any, index: int, base: Path) -> bytes | None:
    """The image bytes of one row: the struct's bytes, else the file its path names."""
    value = array[index].as_py()
    path = None
    if isinstance(value, dict):
        data, path = value.get("bytes"), value.get("path")
    elif isinstance(value, (bytes, bytearray)):
        data = bytes(value)
    else:
        data, path = None, value
    if data:
        return data
    if isinstance(path, str) and path:
        for candidate in (Path(path), base / path):
            if candidate.is_file():
                return candidate.read_bytes()
    return None


def _write_image(path: Path, data: bytes) -> None:
    """Write an image unless the same bytes are already there (re-runs stay cheap)."""
    if path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, data)


def _extract_embedded_images(
    kept: dict[str, list[_Sample]],
    files: dict[str, list[Path]],
    images_dir: Path,
    config: ConvertConfig,
    issues: list[Issue],
    write: bool,
) -> int:
    """Stream each export's image column, check the images the kept questions use, write them.

    Each COCO image is taken from the first kept row that shows it. Returns how
    many images were re-encoded to JPEG.
    """
    users: dict[tuple[str, int], list[_Sample]] = {}
    for samples in kept.values():
        for sample in samples:
            assert sample.image_id is not None
            users.setdefault((sample.split, sample.image_id), []).append(sample)
    wanted: dict[tuple[str, int], dict[int, tuple[str, int]]] = {}
    for key, samples in users.items():
        first = samples[0]
        assert first.image_row is not None
        file_index, row = first.image_row
        wanted.setdefault((first.split, file_index), {})[row] = key

    reencoded = 0
    decode = config.check_images
    workers = config.workers or _default_workers()
    description = "checking images" if decode else "extracting images"
    with (
        concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool,
        _progress_bar(len(users), config.progress, description) as bar,
    ):
        for (split, file_index), rows in sorted(wanted.items()):
            path = files[split][file_index]
            layout = _detect_layout(path, _read_schema_names(path))
            offset = 0
            for array in _image_batches(path, layout.image):
                batch_rows = [row for row in range(offset, offset + len(array)) if row in rows]
                datas = [_embedded_value(array, row - offset, path.parent) for row in batch_rows]
                offset += len(array)
                results = pool.map(lambda data: _prepare_embedded(data, decode), datas)
                for row, (problem, data, was_reencoded) in zip(batch_rows, results, strict=True):
                    bar.update(1)
                    key = rows[row]
                    if problem:
                        for sample in users[key]:
                            _flag(
                                issues,
                                sample,
                                "bad_image",
                                sample.source_file,
                                sample.question_id,
                                f"image {problem}",
                            )
                        continue
                    reencoded += was_reencoded
                    if write and data is not None:
                        _write_image(images_dir / users[key][0].image, data)
    return reencoded


# --------------------------------------------------------------------------
# Selection, the val subset, records and statistics.
# --------------------------------------------------------------------------


def _select(
    samples_by_split: dict[str, list[_Sample]], config: ConvertConfig
) -> dict[str, list[_Sample]]:
    """Problem-free samples, category filter, sorted by question id, then the per-split limit."""
    codes = _category_codes(config.categories)
    kept = {}
    for split, samples in samples_by_split.items():
        chosen = [s for s in samples if s.problem is None]
        if codes is not None:
            chosen = [s for s in chosen if _category_of(s.question_type) in codes]
        chosen.sort(key=lambda s: _id_sort_key(s.question_id))
        if config.limit is not None:
            chosen = chosen[: config.limit]
        kept[split] = chosen
    return kept


def _carve_subset(
    samples: list[_Sample], size: int, seed: int
) -> tuple[list[_Sample], list[_Sample]]:
    """(subset, rest): whole images drawn with ``seed`` until ``size`` questions, never more.

    Images are shuffled with random.Random(seed); an image whose questions would
    overshoot ``size`` is passed over, so the subset has exactly ``size``
    questions whenever the image groups allow it, and no image is split
    between subset and rest.
    """
    by_image: dict[int, list[_Sample]] = {}
    for sample in samples:
        assert sample.image_id is not None
        by_image.setdefault(sample.image_id, []).append(sample)
    order = sorted(by_image)
    random.Random(seed).shuffle(order)
    chosen: set[int] = set()
    total = 0
    for image_id in order:
        count = len(by_image[image_id])
        if total + count <= size:
            chosen.add(image_id)
            total += count
            if total == size:
                break
    subset = [s for s in samples if s.image_id in chosen]
    rest = [s for s in samples if s.image_id not in chosen]
    return subset, rest


def _record(sample: _Sample, suffix: str) -> dict[str, Any]:
    """One sample in LLaVA training format (fixed key order)."""
    human = _human_turn(sample.question, suffix)
    if not human.startswith(DEFAULT_IMAGE_TOKEN):  # the contract the trainer relies on
        raise AssertionError(
            f"human turn without {DEFAULT_IMAGE_TOKEN} for question {sample.question_id}"
        )
    return {
        "id": str(sample.question_id),
        "image": sample.image,
        "conversations": [
            {"from": "human", "value": human},
            {"from": "gpt", "value": sample.target},
        ],
        "question_id": sample.question_id,
        "answers": list(sample.answers or []),
        "question_type": sample.question_type,
    }


def _split_stats(samples: list[_Sample]) -> dict[str, Any]:
    """Questions, distinct images, questions per category, target length in words."""
    categories = Counter(str(s.question_type) for s in samples)
    known = [code for code in CATEGORIES if code in categories]
    others = sorted(code for code in categories if code not in CATEGORIES)
    words = Counter(len(s.target.split()) for s in samples)
    return {
        "questions": len(samples),
        "images": len({s.image_id for s in samples}),
        "per_category": {code: categories[code] for code in known + others},
        "target_words": {str(length): words[length] for length in sorted(words)},
    }


# --------------------------------------------------------------------------
# Configuration check and error report.
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
    if official:
        okvqa_dir = Path(config.okvqa_dir)  # type: ignore[arg-type]
        for split in (s for s in splits if s in SPLITS):
            for name in (QUESTION_FILES[split], ANNOTATION_FILES[split]):
                if not (okvqa_dir / name).is_file():
                    problems.append(
                        f"missing {okvqa_dir / name} (download it from the OK-VQA site, see docs/OKVQA.md)"
                    )
        if config.coco_dir is None:
            problems.append(
                "--coco-dir is needed with --okvqa-dir (the folder holding train2014/ and val2014/)"
            )
        else:
            for split in (s for s in splits if s in SPLITS):
                folder = Path(config.coco_dir) / COCO_SPLITS[split]
                if not folder.is_dir():
                    problems.append(f"missing COCO image folder {folder}")
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
        [s for s in splits if s in SPLITS]
        if official
        else [
            split
            for split, entries in (("train", config.hf_train), ("val", config.hf_val))
            if entries
        ]
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


def _format_issues(issues: Sequence[Issue]) -> str:
    """One message for every problem: per kind and file, the count, the ids, the flag to skip."""
    groups: dict[tuple[str, str], list[Issue]] = {}
    for issue in issues:
        groups.setdefault((issue.kind, issue.file), []).append(issue)
    order = list(ISSUE_KINDS)
    lines = [
        f"OK-VQA conversion failed: {len(issues)} problem(s) in the input; no JSON output was written."
    ]
    for (kind, file), group in sorted(
        groups.items(), key=lambda item: (order.index(item[0][0]), item[0][1])
    ):
        flag, what = ISSUE_KINDS[kind]
        reasons = {issue.reason for issue in group}
        if len(reasons) == 1:
            ids = [str(issue.question_id) for issue in group]
            reason = f" ({reasons.pop()})" if group[0].reason else ""
        else:
            ids = [f"{issue.question_id} ({issue.reason})" for issue in group]
            reason = ""
        lines.append(
            f"- {len(group)} {what} in {file}{reason}: question ids {_list_ids(ids)} [skip with {flag}]"
        )
    flags = " ".join(
        dict.fromkeys(
            ISSUE_KINDS[kind][0] for kind, _ in sorted(groups, key=lambda g: order.index(g[0]))
        )
    )
    lines.append(f"Fix the input, or drop these questions with: {flags}")
    return "\n".join(lines)


# --------------------------------------------------------------------------
# The conversion.
# --------------------------------------------------------------------------


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
    samples_by_split = _read_input(config, issues, notes)
    _check_text(samples_by_split, issues)
    kept = _select(samples_by_split, config)
    _check_images(kept, config, issues, notes)
    skipped_kinds = _skipped_kinds(config)
    failing = [issue for issue in issues if issue.kind not in skipped_kinds]
    if failing:
        raise ConversionError(_format_issues(failing), failing)
    kept = {split: [s for s in samples if s.problem is None] for split, samples in kept.items()}
    outputs, val_subset = _with_val_subset(kept, config)
    out_dir = Path(config.out_dir)
    written = _write_outputs(out_dir, outputs, config.prompt_suffix)
    summary = ConversionSummary(
        source="official" if config.okvqa_dir is not None else "huggingface",
        out_dir=str(out_dir.resolve()),
        image_folder=str(_image_folder(config)),
        image_check="decoded" if config.check_images else "presence only",
        prompt_suffix=config.prompt_suffix,
        splits={name: _split_stats(samples) for name, samples in outputs.items()},
        files=written,
        skipped=_skipped_summary(issues),
        filters={"categories": _category_codes(config.categories), "limit": config.limit},
        val_subset=val_subset,
        notes=notes,
    )
    write_atomic(out_dir / "summary.json", _dump_json(summary.to_dict()))
    return summary


def _export_files(config: ConvertConfig) -> dict[str, list[Path]]:
    """Split -> export files, for the splits given."""
    entries = (("train", config.hf_train), ("val", config.hf_val))
    return {split: _expand_files(paths) for split, paths in entries if paths}


def _image_folder(config: ConvertConfig) -> Path:
    """The folder every record's "image" is relative to (the --image_folder to train with)."""
    if config.okvqa_dir is not None:
        return Path(config.coco_dir).resolve()  # type: ignore[arg-type]
    return (Path(config.out_dir) / IMAGES_DIR).resolve()


def _read_input(
    config: ConvertConfig, issues: list[Issue], notes: list[str]
) -> dict[str, list[_Sample]]:
    """Split -> samples, from the official files or the exports."""
    if config.okvqa_dir is not None:
        okvqa_dir, coco_dir = Path(config.okvqa_dir), Path(config.coco_dir)  # type: ignore[arg-type]
        splits = [split for split in SPLITS if split in config.splits]
        return {split: _read_official_split(okvqa_dir, coco_dir, split, issues) for split in splits}
    files = _export_files(config)
    return {split: _read_hf_split(paths, split, issues, notes) for split, paths in files.items()}


def _check_images(
    kept: dict[str, list[_Sample]], config: ConvertConfig, issues: list[Issue], notes: list[str]
) -> None:
    """Check the images of the kept samples; extract embedded ones unless the run will fail."""
    if config.okvqa_dir is not None:
        _check_official_images(kept, config, issues)
        return
    skipped_kinds = _skipped_kinds(config)
    will_fail = any(issue.kind not in skipped_kinds for issue in issues)
    images_dir = Path(config.out_dir) / IMAGES_DIR
    reencoded = _extract_embedded_images(
        kept, _export_files(config), images_dir, config, issues, write=not will_fail
    )
    if reencoded:
        notes.append(f"{reencoded} embedded images were not JPEG and were re-encoded as JPEG")


def _with_val_subset(
    kept: dict[str, list[_Sample]], config: ConvertConfig
) -> tuple[dict[str, list[_Sample]], dict[str, Any] | None]:
    """The outputs with val_subset carved out (and taken out of train with --val-from train)."""
    outputs = dict(kept)
    if not config.val_size:
        return outputs, None
    pool = kept[config.val_from]
    if config.val_from == "train" and config.val_size >= len(pool):
        raise ConversionError(
            f"--val-size {config.val_size} leaves nothing of the {len(pool)} train questions; "
            "train must keep some"
        )
    if config.val_size > len(pool):
        raise ConversionError(
            f"--val-size {config.val_size} is more than the {len(pool)} val questions available"
        )
    subset, rest = _carve_subset(pool, config.val_size, config.seed)
    outputs["val_subset"] = subset
    if config.val_from == "train":
        outputs["train"] = rest
    return outputs, {
        "from": config.val_from,
        "seed": config.seed,
        "requested": config.val_size,
        "size": len(subset),
    }


def _skipped_summary(issues: Sequence[Issue]) -> dict[str, dict[str, Any]]:
    """Issue kind -> flag, count and question ids, for the kinds a --skip-* flag dropped."""
    skipped = {}
    for kind, (flag, _) in ISSUE_KINDS.items():
        ids = [issue.question_id for issue in issues if issue.kind == kind]
        if ids:
            skipped[kind] = {"flag": flag, "count": len(ids), "question_ids": ids}
    return skipped


def _category_codes(categories: Sequence[str] | None) -> list[str] | None:
    """The requested categories as codes in the official order, or None for all."""
    if not categories:
        return None
    codes = {resolve_category(value) for value in categories}
    return [code for code in CATEGORIES if code in codes]


def _write_outputs(out_dir: Path, outputs: dict[str, list[_Sample]], suffix: str) -> dict[str, str]:
    """Write the JSON outputs atomically, remove stale ones; returns kind -> file name."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, str] = {}
    for name in ("train", "val", "val_subset"):
        if name in outputs:
            records = [_record(sample, suffix) for sample in outputs[name]]
            written[name] = f"{name}.json"
            write_atomic(out_dir / written[name], _dump_json_lines(records))
    if "val" in outputs:
        lines = [
            json.dumps(
                {
                    "question_id": sample.question_id,
                    "image": sample.image,
                    "text": _question_text(sample.question, suffix),
                },
                ensure_ascii=False,
            )
            for sample in outputs["val"]
        ]
        written["val_questions"] = "val_questions.jsonl"
        write_atomic(out_dir / written["val_questions"], "".join(line + "\n" for line in lines))
        # {"format": ..., "split": ..., "questions": {id: {...}, one question per line}}
        entries = [
            json.dumps(str(sample.question_id))
            + ": "
            + json.dumps(
                {
                    "question": sample.question,
                    "answers": list(sample.answers or []),
                    "question_type": sample.question_type,
                },
                ensure_ascii=False,
            )
            for sample in outputs["val"]
        ]
        header = json.dumps({"format": ANNOTATIONS_FORMAT, "split": COCO_SPLITS["val"]})[:-1]
        body = "{\n" + ",\n".join(entries) + "\n}" if entries else "{}"
        written["val_annotations"] = "val_annotations.json"
        write_atomic(out_dir / written["val_annotations"], f'{header}, "questions": {body}}}\n')
    written["summary"] = "summary.json"
    for name in OUTPUT_FILES:
        if name not in written.values() and (out_dir / name).is_file():
            (out_dir / name).unlink()  # stale output of an earlier run with other options
    return written


# --------------------------------------------------------------------------
# Command line.
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


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m llava.data.okvqa``."""
    parser = argparse.ArgumentParser(
        prog="python -m llava.data.okvqa",
        description=(
            "Convert OK-VQA to LLaVA training data (train.json, val.json), the model_vqa question "
            "file and the scorer's annotations. The target of each question is its most common "
            "normalised answer; all ten answers are kept. Every input problem is reported at once "
            "and fails the run unless a --skip-* flag drops those questions. Never uses the network."
        ),
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    official = parser.add_argument_group("official files")
    official.add_argument(
        "--okvqa-dir",
        help="folder with OpenEnded_mscoco_{train,val}2014_questions.json and "
        "mscoco_{train,val}2014_annotations.json",
    )
    official.add_argument("--coco-dir", help="folder with COCO 2014 train2014/ and val2014/ images")
    official.add_argument(
        "--splits",
        nargs="+",
        choices=SPLITS,
        default=list(SPLITS),
        help="splits to convert (default: train val)",
    )
    exported = parser.add_argument_group("Hugging Face exports (local parquet/arrow files)")
    exported.add_argument(
        "--hf-train",
        nargs="+",
        default=[],
        metavar="FILE",
        help="train split files, or folders of them (e.g. Multimodal-Fatima/OK-VQA_train, HuggingFaceM4/OK-VQA train)",
    )
    exported.add_argument(
        "--hf-val",
        nargs="+",
        default=[],
        metavar="FILE",
        help="val2014 split files, or folders of them (e.g. Multimodal-Fatima/OK-VQA_test, lmms-lab/OK-VQA)",
    )
    output = parser.add_argument_group("output")
    output.add_argument(
        "--out", default=DEFAULT_OUT_DIR, help=f"output folder (default: {DEFAULT_OUT_DIR})"
    )
    output.add_argument(
        "--prompt-suffix",
        default=DEFAULT_PROMPT_SUFFIX,
        help=f"line appended to every question (default: {DEFAULT_PROMPT_SUFFIX!r}; '' for none)",
    )
    output.add_argument(
        "--val-size",
        type=int,
        default=0,
        metavar="N",
        help="also write val_subset.json with N questions for evaluation between epochs (default: 0, none)",
    )
    output.add_argument(
        "--val-from",
        choices=SPLITS,
        default="val",
        help="draw the subset from val (default) or from train (whole images, removed from train.json)",
    )
    output.add_argument("--seed", type=int, default=0, help="seed of the subset draw (default: 0)")
    selection = parser.add_argument_group("selection")
    selection.add_argument(
        "--categories",
        nargs="+",
        metavar="CATEGORY",
        help="keep only these knowledge categories: codes (one ... ten, other), numbers (1-10) or names "
        "('Plants and Animals', or just 'plants')",
    )
    selection.add_argument(
        "--limit", type=int, metavar="N", help="keep the first N questions (by id) of each split"
    )
    checks = parser.add_argument_group("validation (each problem fails the run unless skipped)")
    checks.add_argument(
        "--skip-missing-annotations",
        action="store_true",
        help="drop questions without an annotation",
    )
    checks.add_argument(
        "--skip-bad-answers", action="store_true", help="drop questions without ten usable answers"
    )
    checks.add_argument(
        "--skip-bad-questions",
        action="store_true",
        help="drop questions with no text, an <image> tag in the text, or no image id",
    )
    checks.add_argument(
        "--skip-duplicates",
        action="store_true",
        help="drop repeated question ids (the first copy stays; the train copy of a val id goes)",
    )
    checks.add_argument(
        "--skip-bad-images",
        action="store_true",
        help="drop questions whose image is missing or unreadable",
    )
    checks.add_argument(
        "--no-image-check",
        action="store_true",
        help="do not decode images (faster); missing images are still found",
    )
    checks.add_argument(
        "--workers", type=int, help="threads for the image check (default: 4 per CPU, at most 32)"
    )
    checks.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def config_from_args(args: argparse.Namespace) -> ConvertConfig:
    """The ConvertConfig for parsed command-line arguments."""
    return ConvertConfig(
        out_dir=args.out,
        okvqa_dir=args.okvqa_dir,
        coco_dir=args.coco_dir,
        hf_train=args.hf_train,
        hf_val=args.hf_val,
        splits=args.splits,
        prompt_suffix=args.prompt_suffix,
        val_size=args.val_size,
        val_from=args.val_from,
        categories=args.categories,
        limit=args.limit,
        seed=args.seed,
        skip_missing_annotations=args.skip_missing_annotations,
        skip_bad_answers=args.skip_bad_answers,
        skip_bad_questions=args.skip_bad_questions,
        skip_duplicates=args.skip_duplicates,
        skip_bad_images=args.skip_bad_images,
        check_images=not args.no_image_check,
        workers=args.workers,
        progress=False if args.no_progress else None,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the converter; prints the summary, or every problem on stderr. Returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        summary = convert(config_from_args(args))
    except ConversionError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(summary.format())
    return 0


if __name__ == "__main__":
    sys.exit(main())
