"""Convert short-answer VQA data in the formats people keep it in to LLaVA training data.

One engine for every dataset; ``llava.data.okvqa`` and ``llava.data.aokvqa``
are thin fronts over it. Never touches the network. Run it as a module::

    # a spreadsheet of image paths, questions and answers, split 90/10 by image
    python -m llava.data.vqa --input data/my_vqa.csv --image-root data/images \\
        --out playground/data/my_vqa --val-fraction 0.1 --seed 0

    # your own train/val files (any mix of the formats below)
    python -m llava.data.vqa --splits train=data/train.jsonl val=data/val.parquet --out OUT

    # a Hugging Face ``imagefolder`` (images + metadata.jsonl) or a save_to_disk folder
    python -m llava.data.vqa --input data/my_imagefolder --out OUT --val-fraction 0.1

Inputs: JSON (a list of objects), JSONL, CSV/TSV, Parquet, Arrow, a ``datasets``
``save_to_disk`` folder, an image folder with ``metadata.jsonl``/``metadata.csv``.
Columns are found by common names (``COLUMN_NAMES``) or set with
``--image-column --question-column --answer-column --id-column --category-column``.
An answer is one string or a list (a JSON list inside a CSV cell counts as a
list). Images are paths (relative to ``--image-root``, default the input's
folder, or absolute) or embedded bytes, written once to ``OUT/images/`` under
their content hash.

Outputs in ``--out`` are the OK-VQA converter's file set: ``train.json``,
``val.json``, ``val_subset.json``, ``val_questions.jsonl``,
``val_annotations.json``, ``summary.json`` (see docs/CUSTOM_DATA.md). The
target of each question is its most common normalised answer; all answers and
the category stay in the record for scoring. Every problem in the input is
reported at once by file, row and id, and nothing is written unless the
matching ``--skip-*`` flag drops those rows. Writes are atomic; a rerun is
byte-identical.

Python API: ``convert(VqaConfig(...)) -> ConversionSummary``; the fronts use
``Sample``, ``finish`` and the helpers below.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import io
import json
import os
import random
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from llava.constants import DEFAULT_IMAGE_TOKEN
from llava.images import ImageReadError, image_format, open_image
from llava.metrics.annotations import ANNOTATIONS_FORMAT
from llava.metrics.vqa import most_common_answer
from llava.utils import write_atomic

__all__ = [
    "ANNOTATIONS_FORMAT",
    "COLUMN_NAMES",
    "DEFAULT_PROMPT_SUFFIX",
    "ConversionError",
    "ConversionSummary",
    "EmbeddedSource",
    "Issue",
    "Sample",
    "VqaConfig",
    "convert",
    "main",
]

DEFAULT_OUT_DIR = "playground/data/vqa"
DEFAULT_PROMPT_SUFFIX = "Answer the question using a single word or phrase."
IMAGES_DIR = "images"
# Every file name a conversion may write in --out; stale ones from an earlier run are removed.
OUTPUT_FILES = (
    "train.json",
    "val.json",
    "val_subset.json",
    "val_questions.jsonl",
    "val_annotations.json",
    "val_questions_mc.jsonl",
    "summary.json",
)
# How many ids an error message or the printed summary lists before "... and N more".
LISTED_IDS = 20
_JPEG_MAGIC = b"\xff\xd8\xff"
# Rows read per batch when streaming an embedded image column.
_IMAGE_BATCH_ROWS = 64

# Kinds of input problems, in report order: kind -> (the flag that skips it, what it means).
ISSUE_KINDS = {
    "missing_annotation": ("--skip-missing-annotations", "questions without an annotation"),
    "bad_answers": ("--skip-bad-answers", "questions without usable answers"),
    "bad_question": (
        "--skip-bad-questions",
        "questions with no text, an '<image>' tag or no image id",
    ),
    "duplicate_id": ("--skip-duplicates", "duplicate question ids"),
    "bad_image": ("--skip-bad-images", "questions whose image is missing or unreadable"),
    "shared_image": ("--skip-shared-images", "train questions on an image that val also uses"),
}

# Column roles -> the names looked for (case-insensitive), first match wins.
COLUMN_NAMES = {
    "image": (
        "image",
        "image_path",
        "image_file",
        "file_name",
        "filename",
        "img",
        "img_path",
        "path",
    ),
    "question": ("question", "query", "question_text", "prompt", "instruction"),
    "answer": (
        "answers",
        "answer",
        "direct_answers",
        "multiple_choice_answer",
        "label",
        "labels",
        "target",
    ),
    "id": ("question_id", "id", "qid", "uid", "sample_id"),
    "category": ("question_type", "category", "type", "topic"),
}
REQUIRED_ROLES = ("image", "question", "answer")
TABLE_SUFFIXES = {
    ".json": "json",
    ".jsonl": "jsonl",
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".arrow": "arrow",
}
SPLITS = ("train", "val")


# --------------------------------------------------------------------------
# Configuration (the command line is generated from it), problems, summary.
# --------------------------------------------------------------------------


def _help(text: str, **extra: Any) -> dict[str, Any]:
    return {"help": text, **extra}


@dataclass
class VqaConfig:
    """One conversion of generic VQA data; ``python -m llava.data.vqa --help`` lists these fields."""

    input: list[str] = field(
        default_factory=list,
        metadata=_help("input files or folders, split into train/val by --val-fraction"),
    )
    splits: list[str] = field(
        default_factory=list,
        metadata=_help("your own split files instead of --input: train=PATH val=PATH (repeatable)"),
    )
    out_dir: str = field(
        default=DEFAULT_OUT_DIR, metadata=_help("output folder", aliases=["--out"])
    )
    image_root: str | None = field(
        default=None,
        metadata=_help("folder relative image paths start from (default: each input's folder)"),
    )
    image_column: str | None = field(default=None, metadata=_help("column with the image"))
    question_column: str | None = field(default=None, metadata=_help("column with the question"))
    answer_column: str | None = field(
        default=None, metadata=_help("column with the answer (a string or a list of answers)")
    )
    id_column: str | None = field(
        default=None, metadata=_help("column with a unique question id (default: the row number)")
    )
    category_column: str | None = field(
        default=None, metadata=_help("column with a category, kept for per-category scores")
    )
    val_fraction: float = field(
        default=0.0, metadata=_help("share of the questions (whole images) that go to val")
    )
    seed: int = field(default=0, metadata=_help("seed of the train/val split and the val subset"))
    val_size: int = field(
        default=500,
        metadata=_help("questions of val (whole images) in val_subset.json, scored between epochs"),
    )
    prompt_suffix: str = field(
        default=DEFAULT_PROMPT_SUFFIX,
        metadata=_help("line appended to every question ('' for none)"),
    )
    skip_bad_questions: bool = field(
        default=False, metadata=_help("drop rows with an empty question or an <image> tag")
    )
    skip_bad_answers: bool = field(
        default=False, metadata=_help("drop rows without a usable answer")
    )
    skip_duplicates: bool = field(
        default=False, metadata=_help("drop repeated question ids (the first copy stays)")
    )
    skip_bad_images: bool = field(
        default=False, metadata=_help("drop rows whose image is missing or unreadable")
    )
    skip_shared_images: bool = field(
        default=False, metadata=_help("with --splits: drop train rows whose image val also uses")
    )
    image_check: bool = field(
        default=True,
        metadata=_help("decode every image; --no-image-check only checks that files exist"),
    )
    workers: int | None = field(
        default=None, metadata=_help("threads for the image check (default: 4 per CPU, max 32)")
    )
    progress: bool = field(
        default=True, metadata=_help("progress bars on a terminal (--no-progress: none)")
    )


@dataclass(frozen=True)
class Issue:
    """One problem in the input: its kind, file, question id, why, and where ('line 5')."""

    kind: str
    file: str
    question_id: int | str
    reason: str = ""
    where: str = ""


class ConversionError(Exception):
    """The input has problems (all listed in the message) or the configuration is wrong."""

    def __init__(self, message: str, issues: Sequence[Issue] = ()):
        super().__init__(message)
        self.issues = list(issues)


@dataclass
class ConversionSummary:
    """What a conversion did; also written as summary.json."""

    source: str
    """The input kind: 'official', 'huggingface', 'files'."""
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

    def format(self, title: str = "OK-VQA", scorer: str = "llava.eval.eval_okvqa") -> str:
        """A human-readable report: counts, skips, target lengths and how to use the output."""
        out = Path(self.out_dir)
        lines = [f"{title} converted ({self.source} input) -> {self.out_dir}"]
        for name, stats in self.splits.items():
            lines.append(
                f"  {name:<11}{stats['questions']:>7} questions {stats['images']:>7} images"
                f"  -> {self.files.get(name, '')}"
            )
        if self.val_subset:
            lines.append(
                f"  val subset drawn from {self.val_subset['from']} with seed {self.val_subset['seed']}"
                f" ({self.val_subset['size']} of {self.val_subset['requested']} requested)"
            )
        for name, stats in self.splits.items():
            categories = ", ".join(
                f"{code or '(none)'} {count}" for code, count in stats["per_category"].items()
            )
            lines.append(f"  {name} per category: {categories or '-'}")
        for name, stats in self.splits.items():
            total = stats["questions"] or 1
            lengths = ", ".join(
                f"{words} word{'s' if words != '1' else ''} {100 * count / total:.1f}%"
                for words, count in stats["target_words"].items()
            )
            lines.append(f"  {name} target length: {lengths or '-'}")
        for kind, entry in self.skipped.items():
            lines.append(
                f"  skipped {entry['count']} {ISSUE_KINDS[kind][1]} ({entry['flag']}): "
                f"{list_ids(entry['question_ids'])}"
            )
        if not self.skipped:
            lines.append("  skipped nothing")
        lines.append(f"  images: {self.image_check}")
        lines.extend(f"  note: {note}" for note in self.notes)
        if "train" in self.files:
            lines.append(
                f"Train with: --data_path {out / self.files['train']} --image_folder {self.image_folder}"
            )
        if "val_annotations" in self.files:
            lines.append(
                f"Score with: python -m {scorer} --answers ANSWERS.jsonl "
                f"--annotations {out / self.files['val_annotations']}"
            )
        return "\n".join(lines)


@dataclass
class Sample:
    """One question as read from the input, before it becomes an output record."""

    question_id: int | str
    question: str
    answers: list[str | None] | None
    """None: no annotation at all; a list with a None: an answer that is not text."""
    question_type: str | None
    split: str
    source_file: str
    where: str = ""
    """Where in source_file ('line 5', 'row 3'); '' when the id says it all."""
    image: str = ""
    """The record's image path, relative to the image folder (or absolute)."""
    image_key: Any = None
    """Questions with the same key show the same image (splits never divide them)."""
    image_file: Path | None = None
    """An image on disk to check."""
    embedded: tuple[int, int] | None = None
    """(source index, row) of embedded image bytes in the EmbeddedSource list."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Extra record fields, written after question_type (A-OKVQA's choices, ...)."""
    target: str = ""
    problem: str | None = None
    """The first problem found with this sample; such samples never reach the output."""


@dataclass(frozen=True)
class EmbeddedSource:
    """A Parquet or Arrow file whose ``column`` holds embedded images (bytes, or {bytes, path})."""

    path: Path
    column: str
    base: Path
    """Folder a row's image path is relative to when its bytes are empty."""


# --------------------------------------------------------------------------
# Small helpers shared with the fronts.
# --------------------------------------------------------------------------


def list_ids(ids: Sequence[Any], limit: int = LISTED_IDS) -> str:
    """'1, 2, 3' or '1, 2, ... and 40 more'."""
    shown = ", ".join(str(item) for item in ids[:limit])
    return shown + (f", ... and {len(ids) - limit} more" if len(ids) > limit else "")


def human_turn(question: str, suffix: str) -> str:
    """The human turn: image token, question, and the suffix on its own line."""
    return "\n".join(part for part in (DEFAULT_IMAGE_TOKEN, question, suffix) if part)


def question_text(question: str, suffix: str) -> str:
    """The model_vqa question text: question and suffix, no image token."""
    return "\n".join(part for part in (question, suffix) if part)


def dump_json(data: Any) -> str:
    """Stable JSON text: two-space indent, UTF-8 characters as they are, final new line."""
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def dump_json_lines(items: Sequence[Any]) -> str:
    """A JSON list with one compact item per line: valid JSON, diffable, fast (C encoder)."""
    if not items:
        return "[]\n"
    return "[\n" + ",\n".join(json.dumps(item, ensure_ascii=False) for item in items) + "\n]\n"


def answer_text(answer: Any) -> str | None:
    """The text of one answer: a string as is, a number as text, a dict's 'answer'/'raw_answer'."""
    if isinstance(answer, str):
        return answer
    if isinstance(answer, (int, float)) and not isinstance(answer, bool):
        return str(answer)
    if isinstance(answer, dict):
        for key in ("answer", "raw_answer", "text"):
            if isinstance(answer.get(key), str):
                return answer[key]
    return None


def id_sort_key(question_id: int | str) -> tuple[int, int, str]:
    """Numbers first in numeric order, then text ids."""
    if isinstance(question_id, int):
        return (0, question_id, "")
    return (1, 0, question_id)


def flag(
    issues: list[Issue],
    sample: Sample | None,
    kind: str,
    file: str,
    question_id: Any,
    reason: str,
    where: str = "",
) -> None:
    """Record a problem; the sample (if any) is then left out of the output."""
    issues.append(Issue(kind, file, question_id, reason, where))
    if sample is not None and sample.problem is None:
        sample.problem = kind


def answers_problem(sample: Sample, expected: int | None = None) -> str:
    """Why a sample's answers are unusable ('' when fine); sets the target when fine."""
    answers = sample.answers or []
    if expected is not None and len(answers) != expected:
        return f"{len(answers)} answers"
    if not answers:
        return "no answer"
    for position, answer in enumerate(answers, start=1):
        if answer is None:
            return f"answer {position} is not text"
    sample.target = most_common_answer(answers)  # type: ignore[arg-type]
    if not sample.target:
        return "no answer left after normalisation"
    return ""


def check_text(
    samples_by_split: dict[str, list[Sample]],
    issues: list[Issue],
    expected_answers: int | None = None,
) -> None:
    """Flag bad answers, bad questions and duplicate ids; set each good sample's target.

    A repeated id within a split keeps its first copy; an id in both train and
    val keeps the val copy (the scorer's annotations are keyed by id).
    """
    for split, samples in samples_by_split.items():
        seen: set[str] = set()
        for sample in samples:
            file, where = sample.source_file, sample.where
            key = str(sample.question_id)
            if key in seen:
                reason = f"repeated in the {split} split"
                flag(issues, sample, "duplicate_id", file, sample.question_id, reason, where)
                continue
            seen.add(key)
            question = sample.question.strip()
            if not question:
                flag(
                    issues,
                    sample,
                    "bad_question",
                    file,
                    sample.question_id,
                    "empty question",
                    where,
                )
            elif DEFAULT_IMAGE_TOKEN in question:
                reason = f"{DEFAULT_IMAGE_TOKEN} in the question"
                flag(issues, sample, "bad_question", file, sample.question_id, reason, where)
            sample.question = question
            if sample.answers is None:
                continue  # flagged by the reader
            reason = answers_problem(sample, expected_answers)
            if reason:
                flag(issues, sample, "bad_answers", file, sample.question_id, reason, where)
    if "train" in samples_by_split and "val" in samples_by_split:
        val_ids = {str(sample.question_id) for sample in samples_by_split["val"]}
        for sample in samples_by_split["train"]:
            if str(sample.question_id) in val_ids and sample.problem != "duplicate_id":
                flag(
                    issues,
                    sample,
                    "duplicate_id",
                    sample.source_file,
                    sample.question_id,
                    "also a val question id",
                    sample.where,
                )


def format_issues(
    issues: Sequence[Issue], title: str, kinds: dict[str, tuple[str, str]] | None = None
) -> str:
    """One message for every problem: per kind and file, the count, rows/ids, the flag to skip.

    ``kinds``: the front's wording of ISSUE_KINDS (same keys, same order).
    """
    kinds = kinds or ISSUE_KINDS
    groups: dict[tuple[str, str], list[Issue]] = {}
    for issue in issues:
        groups.setdefault((issue.kind, issue.file), []).append(issue)
    order = list(kinds)
    lines = [
        f"{title} conversion failed: {len(issues)} problem(s) in the input; no JSON output was written."
    ]
    ordered = sorted(groups.items(), key=lambda item: (order.index(item[0][0]), item[0][1]))
    for (kind, file), group in ordered:
        flag_name, what = kinds[kind]
        reasons = {issue.reason for issue in group}

        def label(issue: Issue) -> str:
            return (
                f"{issue.where} id {issue.question_id}" if issue.where else str(issue.question_id)
            )

        if len(reasons) == 1:
            entries = [label(issue) for issue in group]
            reason = f" ({reasons.pop()})" if group[0].reason else ""
        else:
            entries = [f"{label(issue)} ({issue.reason})" for issue in group]
            reason = ""
        noun = "rows" if group[0].where else "question ids"
        lines.append(
            f"- {len(group)} {what} in {file}{reason}: {noun} {list_ids(entries)} [skip with {flag_name}]"
        )
    flags = " ".join(dict.fromkeys(kinds[kind][0] for (kind, _), _ in ordered))
    lines.append(f"Fix the input, or drop these questions with: {flags}")
    return "\n".join(lines)


def skipped_summary(issues: Sequence[Issue]) -> dict[str, dict[str, Any]]:
    """Issue kind -> flag, count and question ids, for the kinds a --skip-* flag dropped."""
    skipped = {}
    for kind, (flag_name, _) in ISSUE_KINDS.items():
        ids = [issue.question_id for issue in issues if issue.kind == kind]
        if ids:
            skipped[kind] = {"flag": flag_name, "count": len(ids), "question_ids": ids}
    return skipped


def raise_failing(
    issues: Sequence[Issue],
    skipped_kinds: set[str],
    title: str,
    kinds: dict[str, tuple[str, str]] | None = None,
) -> None:
    """Raise ConversionError listing every issue no --skip-* flag covers."""
    failing = [issue for issue in issues if issue.kind not in skipped_kinds]
    if failing:
        raise ConversionError(format_issues(failing, title, kinds), failing)


# --------------------------------------------------------------------------
# Images: checking files (in parallel) and extracting embedded ones.
# --------------------------------------------------------------------------


def check_image_file(path: Path) -> str | None:
    """None when the image file decodes, else why not ('missing', 'unreadable: ...')."""
    try:
        image_format(path)
    except ImageReadError as error:
        return "missing" if error.missing else f"unreadable: {error.reason}"
    return None


def progress_bar(total: int, progress: bool | None, description: str):
    """A tqdm bar; None shows it on a terminal only."""
    from tqdm import tqdm

    return tqdm(
        total=total,
        desc=description,
        unit="img",
        disable=None if progress is None else not progress,
    )


def default_workers() -> int:
    """Image checks are I/O plus C decoding that releases the GIL: 4 threads per CPU, at most 32."""
    return min(32, 4 * (os.cpu_count() or 1))


def check_image_files(
    samples: Sequence[Sample],
    decode: bool,
    workers: int | None,
    progress: bool | None,
    issues: list[Issue],
) -> None:
    """Find every image file the samples use (one listing per folder), decode each once in threads."""
    users: dict[Path, list[Sample]] = {}
    for sample in samples:
        if sample.image_file is not None:
            users.setdefault(sample.image_file, []).append(sample)
    listings = {
        folder: set(os.listdir(folder)) if folder.is_dir() else set()
        for folder in {path.parent for path in users}
    }
    problems: dict[Path, str] = {}
    present = []
    for path in users:
        if path.name in listings[path.parent]:
            present.append(path)
        else:
            problems[path] = "missing"
    if decode and present:
        with (
            concurrent.futures.ThreadPoolExecutor(max_workers=workers or default_workers()) as pool,
            progress_bar(len(present), progress, "checking images") as bar,
        ):
            for path, problem in zip(present, pool.map(check_image_file, present), strict=True):
                bar.update(1)
                if problem:
                    problems[path] = problem
    for path in sorted(problems):
        for sample in users[path]:
            reason = f"{sample.image} {problems[path]}"
            flag(
                issues,
                sample,
                "bad_image",
                sample.source_file,
                sample.question_id,
                reason,
                sample.where,
            )


def _image_batches(source: EmbeddedSource) -> Iterator[Any]:
    """The image column of a file, batch by batch (bytes stay in Arrow until asked for)."""
    import pyarrow.parquet as pq

    if _is_parquet(source.path):
        parquet = pq.ParquetFile(source.path)
        for batch in parquet.iter_batches(batch_size=_IMAGE_BATCH_ROWS, columns=[source.column]):
            yield batch.column(0)
    else:
        for batch in arrow_batches(source.path, [source.column]):
            yield batch.column(0)


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


_EXTENSIONS = {
    "JPEG": ".jpg",
    "PNG": ".png",
    "GIF": ".gif",
    "WEBP": ".webp",
    "BMP": ".bmp",
    "TIFF": ".tif",
}


def _prepare_embedded(
    data: bytes | None, decode: bool, to_jpeg: bool
) -> tuple[str | None, bytes | None, str, bool]:
    """(problem, bytes to write, file extension, re-encoded?) for an embedded image.

    JPEG bytes are kept as they are; other formats are kept too (their own
    extension), or re-encoded as JPEG at quality 95 with ``to_jpeg``.
    """
    if not data:
        return "missing", None, "", False
    if data.startswith(_JPEG_MAGIC) and not decode:
        return None, data, ".jpg", False
    try:
        found = image_format(data, decode=decode or to_jpeg)
        if found == "JPEG" or not to_jpeg:
            return None, data, _EXTENSIONS.get(found, ".img"), False
        buffer = io.BytesIO()
        open_image(data).save(buffer, format="JPEG", quality=95)
        return None, buffer.getvalue(), ".jpg", True
    except ImageReadError as error:
        return f"unreadable: {error.reason}", None, "", False


def _write_image(path: Path, data: bytes) -> None:
    """Write an image unless the same bytes are already there (reruns stay cheap)."""
    if path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, data)


def extract_embedded(
    samples: Sequence[Sample],
    sources: Sequence[EmbeddedSource],
    images_dir: Path,
    *,
    decode: bool,
    write: bool,
    to_jpeg: bool,
    workers: int | None,
    progress: bool | None,
    issues: list[Issue],
) -> int:
    """Stream embedded images, check those the samples use, write each once under images_dir.

    Samples sharing an image_key read the image of the first of them; a sample
    without a key reads its own row, is named by the content hash
    (``images/<sha256[:16]>.<ext>``) and keyed by that name. Returns how many
    images were re-encoded to JPEG.
    """
    groups: dict[Any, list[Sample]] = {}
    for sample in samples:
        if sample.embedded is not None:
            key = sample.image_key if sample.image_key is not None else ("row", sample.embedded)
            groups.setdefault(key, []).append(sample)
    wanted: dict[int, dict[int, Any]] = {}
    for key, users in groups.items():
        source_index, row = users[0].embedded  # type: ignore[misc]
        wanted.setdefault(source_index, {})[row] = key
    reencoded = 0
    with (
        concurrent.futures.ThreadPoolExecutor(max_workers=workers or default_workers()) as pool,
        progress_bar(
            len(groups), progress, "checking images" if decode else "extracting images"
        ) as bar,
    ):
        for source_index, rows in sorted(wanted.items()):
            source = sources[source_index]
            offset = 0
            for array in _image_batches(source):
                batch_rows = [row for row in range(offset, offset + len(array)) if row in rows]
                datas = [_embedded_value(array, row - offset, source.base) for row in batch_rows]
                offset += len(array)
                results = pool.map(lambda data: _prepare_embedded(data, decode, to_jpeg), datas)
                for row, (problem, data, extension, was_reencoded) in zip(
                    batch_rows, results, strict=True
                ):
                    bar.update(1)
                    users = groups[rows[row]]
                    if problem or data is None:
                        for sample in users:
                            flag(
                                issues,
                                sample,
                                "bad_image",
                                sample.source_file,
                                sample.question_id,
                                f"image {problem}",
                                sample.where,
                            )
                        continue
                    reencoded += was_reencoded
                    if not users[0].image:
                        name = hashlib.sha256(data).hexdigest()[:16] + extension
                        for sample in users:
                            sample.image, sample.image_key = name, name
                    if write:
                        _write_image(images_dir / users[0].image, data)
    return reencoded


# --------------------------------------------------------------------------
# Splits, records, statistics, writing.
# --------------------------------------------------------------------------


def carve_subset(samples: list[Sample], size: int, seed: int) -> tuple[list[Sample], list[Sample]]:
    """(subset, rest): whole images drawn with ``seed`` until ``size`` questions, never more.

    Image keys are sorted, shuffled with random.Random(seed); an image whose
    questions would overshoot ``size`` is passed over, so the subset has exactly
    ``size`` questions whenever the image groups allow it, and no image is split
    between subset and rest.
    """
    by_image: dict[Any, list[Sample]] = {}
    for sample in samples:
        by_image.setdefault(sample.image_key, []).append(sample)
    order = sorted(by_image)
    random.Random(seed).shuffle(order)
    chosen: set[Any] = set()
    total = 0
    for key in order:
        count = len(by_image[key])
        if total + count <= size:
            chosen.add(key)
            total += count
            if total == size:
                break
    subset = [s for s in samples if s.image_key in chosen]
    rest = [s for s in samples if s.image_key not in chosen]
    return subset, rest


def with_val_subset(
    kept: dict[str, list[Sample]], val_size: int, val_from: str, seed: int
) -> tuple[dict[str, list[Sample]], dict[str, Any] | None]:
    """The outputs with val_subset carved out of ``val_from`` (and taken out of train when from train)."""
    outputs = dict(kept)
    if not val_size:
        return outputs, None
    pool = kept[val_from]
    if val_from == "train" and val_size >= len(pool):
        raise ConversionError(
            f"--val-size {val_size} leaves nothing of the {len(pool)} train questions; "
            "train must keep some"
        )
    if val_size > len(pool):
        raise ConversionError(
            f"--val-size {val_size} is more than the {len(pool)} val questions available"
        )
    subset, rest = carve_subset(pool, val_size, seed)
    outputs["val_subset"] = subset
    if val_from == "train":
        outputs["train"] = rest
    summary = {"from": val_from, "seed": seed, "requested": val_size, "size": len(subset)}
    return outputs, summary


def record(sample: Sample, suffix: str) -> dict[str, Any]:
    """One sample in LLaVA training format (fixed key order)."""
    human = human_turn(sample.question, suffix)
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
        **sample.extra,
    }


def split_stats(samples: list[Sample], category_order: Sequence[str] = ()) -> dict[str, Any]:
    """Questions, distinct images, questions per category, target length in words."""
    categories = Counter(str(s.question_type) for s in samples)
    known = [code for code in category_order if code in categories]
    others = sorted(code for code in categories if code not in category_order)
    words = Counter(len(s.target.split()) for s in samples)
    return {
        "questions": len(samples),
        "images": len({s.image_key for s in samples}),
        "per_category": {code: categories[code] for code in known + others},
        "target_words": {str(length): words[length] for length in sorted(words)},
    }


def write_outputs(
    out_dir: Path,
    outputs: dict[str, list[Sample]],
    suffix: str,
    val_split_name: str,
    annotation_fields: Sequence[str] = (),
    mc_prompt: Callable[[Sample], str] | None = None,
) -> dict[str, str]:
    """Write the JSON outputs atomically, remove stale ones; returns kind -> file name.

    ``annotation_fields``: extra keys of ``Sample.extra`` copied into each
    val_annotations entry; ``mc_prompt``: also write val_questions_mc.jsonl with
    that question text.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, str] = {}
    for name in ("train", "val", "val_subset"):
        if name in outputs:
            written[name] = f"{name}.json"
            write_atomic(
                out_dir / written[name], dump_json_lines([record(s, suffix) for s in outputs[name]])
            )
    if "val" in outputs:
        val = outputs["val"]

        def question_lines(text: Callable[[Sample], str]) -> str:
            return "".join(
                json.dumps(
                    {"question_id": s.question_id, "image": s.image, "text": text(s)},
                    ensure_ascii=False,
                )
                + "\n"
                for s in val
            )

        written["val_questions"] = "val_questions.jsonl"
        write_atomic(
            out_dir / written["val_questions"],
            question_lines(lambda s: question_text(s.question, suffix)),
        )
        if mc_prompt is not None:
            written["val_questions_mc"] = "val_questions_mc.jsonl"
            write_atomic(out_dir / written["val_questions_mc"], question_lines(mc_prompt))
        # {"format": ..., "split": ..., "questions": {id: {...}, one question per line}}
        entries = [
            json.dumps(str(s.question_id))
            + ": "
            + json.dumps(
                {
                    "question": s.question,
                    "answers": list(s.answers or []),
                    "question_type": s.question_type,
                    **{key: s.extra[key] for key in annotation_fields},
                },
                ensure_ascii=False,
            )
            for s in val
        ]
        header = json.dumps({"format": ANNOTATIONS_FORMAT, "split": val_split_name})[:-1]
        body = "{\n" + ",\n".join(entries) + "\n}" if entries else "{}"
        written["val_annotations"] = "val_annotations.json"
        write_atomic(out_dir / written["val_annotations"], f'{header}, "questions": {body}}}\n')
    written["summary"] = "summary.json"
    for name in OUTPUT_FILES:
        if name not in written.values() and (out_dir / name).is_file():
            (out_dir / name).unlink()  # stale output of an earlier run with other options
    return written


# --------------------------------------------------------------------------
# Reading tables: JSON, JSONL, CSV/TSV, Parquet, Arrow, save_to_disk, imagefolder.
# --------------------------------------------------------------------------


def _is_parquet(path: Path) -> bool:
    """Parquet by extension, else by its magic bytes."""
    if path.suffix == ".parquet":
        return True
    if path.suffix == ".arrow":
        return False
    with open(path, "rb") as stream:
        return stream.read(4) == b"PAR1"


def open_arrow(path: Path):
    """An Arrow IPC reader for a file in the file format or the stream format (datasets cache)."""
    import pyarrow as pa

    try:
        return pa.ipc.open_file(pa.memory_map(str(path)))
    except pa.ArrowInvalid:
        return pa.ipc.open_stream(pa.memory_map(str(path)))


def arrow_batches(path: Path, columns: Sequence[str]) -> Iterator[Any]:
    """Record batches of an Arrow file restricted to ``columns`` (memory-mapped, no copy)."""
    reader = open_arrow(path)
    if hasattr(reader, "num_record_batches"):
        batches: Any = (reader.get_batch(i) for i in range(reader.num_record_batches))
    else:
        batches = reader
    for batch in batches:
        yield batch.select(list(columns))


def read_schema_names(path: Path) -> list[str]:
    """Column names of a Parquet or Arrow file."""
    import pyarrow.parquet as pq

    if _is_parquet(path):
        return list(pq.read_schema(path).names)
    return list(open_arrow(path).schema.names)


def read_arrow_columns(path: Path, columns: Sequence[str]) -> dict[str, list]:
    """Selected columns of a Parquet or Arrow file as Python lists."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if _is_parquet(path):
        table = pq.read_table(path, columns=list(columns))
    else:
        batches = list(arrow_batches(path, columns))
        table = pa.Table.from_batches(batches) if batches else pa.table({c: [] for c in columns})
    return {name: table.column(name).to_pylist() for name in columns}


def _arrow_column_type(path: Path, column: str) -> Any:
    import pyarrow.parquet as pq

    schema = pq.read_schema(path) if _is_parquet(path) else open_arrow(path).schema
    return schema.field(column).type


@dataclass
class _Table:
    """One input file's rows: column name -> values, and how to name a row in an error."""

    path: Path
    names: list[str]
    read: Callable[[list[str]], dict[str, list]]
    """Reads the given columns as Python lists (the image column of an embedded table excluded)."""
    num_rows: Callable[[], int]
    image_root: Path
    where: Callable[[int], str]
    """Names a row (0-based) the way the file's reader sees it: 'line 5', 'row 5', 'item 5', 'index 5'."""
    arrow: bool = False


def _json_table(
    path: Path, rows: list[Any], where: Callable[[int], str], image_root: Path
) -> _Table:
    names: dict[str, None] = {}
    problems = []
    for index, row in enumerate(rows):
        if isinstance(row, dict):
            names.update(dict.fromkeys(row))
        else:
            problems.append(f"{where(index)} is not an object")
    if problems:
        raise ConversionError(f"{path}: every entry must be a JSON object: " + list_ids(problems))

    def read(columns: list[str]) -> dict[str, list]:
        return {name: [row.get(name) for row in rows] for name in columns}

    return _Table(path, list(names), read, lambda: len(rows), image_root, where)


def _read_json(path: Path, image_root: Path) -> _Table:
    try:
        with open(path, encoding="utf-8") as stream:
            data = json.load(stream)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ConversionError(f"cannot read {path}: {error}") from error
    if not isinstance(data, list):
        raise ConversionError(
            f"{path} is not a JSON list of objects (use .jsonl for one object per line)"
        )
    return _json_table(path, data, lambda index: f"item {index + 1}", image_root)


def _read_jsonl(path: Path, image_root: Path) -> _Table:
    rows, bad, numbers = [], [], []
    try:
        with open(path, encoding="utf-8") as stream:
            for number, line in enumerate(stream, start=1):
                if not line.strip():
                    continue
                numbers.append(number)
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as error:
                    bad.append(f"line {number}: {error}")
    except (OSError, UnicodeDecodeError) as error:
        raise ConversionError(f"cannot read {path}: {error}") from error
    if bad:
        raise ConversionError(f"{path}: lines that are not JSON: " + list_ids(bad))
    return _json_table(path, rows, lambda index: f"line {numbers[index]}", image_root)


def _read_csv(path: Path, delimiter: str, image_root: Path) -> _Table:
    import pyarrow as pa
    import pyarrow.csv as pcsv

    parse = pcsv.ParseOptions(delimiter=delimiter, newlines_in_values=True)
    try:
        with pcsv.open_csv(path, parse_options=parse) as reader:
            names = list(reader.schema.names)
        convert = pcsv.ConvertOptions(
            column_types={name: pa.string() for name in names}, strings_can_be_null=False
        )
        table = pcsv.read_csv(path, parse_options=parse, convert_options=convert)
    except (OSError, pa.ArrowInvalid) as error:
        raise ConversionError(
            f"cannot read {path} as {'TSV' if delimiter == chr(9) else 'CSV'}: {error}"
        ) from error

    def read(columns: list[str]) -> dict[str, list]:
        return {name: table.column(name).to_pylist() for name in columns}

    # Spreadsheet numbering: the header is row 1, so the first data row is row 2.
    return _Table(
        path, names, read, lambda: table.num_rows, image_root, lambda index: f"row {index + 2}"
    )


def _read_arrow_file(path: Path, image_root: Path) -> _Table:
    import pyarrow as pa

    try:
        names = read_schema_names(path)
    except (OSError, pa.ArrowInvalid) as error:
        raise ConversionError(f"cannot read {path}: {error}") from error

    def count() -> int:
        import pyarrow.parquet as pq

        if _is_parquet(path):
            return pq.ParquetFile(path).metadata.num_rows
        return sum(batch.num_rows for batch in arrow_batches(path, []))

    return _Table(
        path,
        names,
        lambda columns: read_arrow_columns(path, columns),
        count,
        image_root,
        lambda index: f"index {index}",
        arrow=True,
    )


def _struct_has_bytes(path: Path, column: str, column_type: Any) -> bool:
    """Whether any row of a struct image column carries bytes (read one batch at a time)."""
    if column_type.get_field_index("bytes") < 0:
        return False
    source = EmbeddedSource(path, column, path.parent)
    return any(array.field("bytes").null_count < len(array) for array in _image_batches(source))


def read_tables(entry: str | Path, image_root: str | Path | None) -> list[_Table]:
    """The tables one --input entry stands for (a file, or a folder in one of the known layouts)."""
    path = Path(entry)
    root = Path(image_root) if image_root else None
    if path.is_dir():
        if (path / "dataset_dict.json").is_file():
            splits = json.loads((path / "dataset_dict.json").read_text(encoding="utf-8")).get(
                "splits", []
            )
            hint = " ".join(
                f"{'val' if s in ('validation', 'test') else s}={path / s}" for s in splits
            )
            raise ConversionError(
                f"{path} is a datasets DatasetDict with splits {splits}: give them with --splits {hint}"
            )
        if (path / "state.json").is_file():
            state = json.loads((path / "state.json").read_text(encoding="utf-8"))
            files = [path / item["filename"] for item in state.get("_data_files", [])]
            return [_read_arrow_file(file, root or path) for file in files]
        for name in ("metadata.jsonl", "metadata.csv"):
            if (path / name).is_file():  # the Hugging Face imagefolder convention
                return read_tables(path / name, root or path)
        files = sorted(p for p in path.iterdir() if p.suffix in TABLE_SUFFIXES)
        if not files:
            raise ConversionError(
                f"{path} is a folder without metadata.jsonl/metadata.csv, state.json or data files "
                f"({', '.join(TABLE_SUFFIXES)})"
            )
        return [table for file in files for table in read_tables(file, root)]
    if not path.is_file():
        raise ConversionError(f"missing input {path}")
    kind = TABLE_SUFFIXES.get(path.suffix.lower())
    base = root or path.parent
    if kind == "json":
        return [_read_json(path, base)]
    if kind == "jsonl":
        return [_read_jsonl(path, base)]
    if kind in ("csv", "tsv"):
        return [_read_csv(path, "\t" if kind == "tsv" else ",", base)]
    if kind in ("parquet", "arrow") or _is_parquet(path):
        return [_read_arrow_file(path, base)]
    raise ConversionError(
        f"{path}: unknown input format; use one of {', '.join(TABLE_SUFFIXES)} or a folder"
    )


def find_columns(table: _Table, config: VqaConfig) -> tuple[dict[str, str | None], list[str]]:
    """Role -> column name for a table, and the problems (a column not found)."""
    by_lower = {name.lower(): name for name in table.names}
    given = {
        "image": config.image_column,
        "question": config.question_column,
        "answer": config.answer_column,
        "id": config.id_column,
        "category": config.category_column,
    }
    found: dict[str, str | None] = {}
    problems = []
    for role, wanted in given.items():
        if wanted is not None:
            found[role] = wanted if wanted in table.names else by_lower.get(wanted.lower())
            if found[role] is None:
                problems.append(
                    f"{table.path}: no column {wanted!r} (--{role}-column); it has {', '.join(table.names)}"
                )
            continue
        found[role] = next(
            (by_lower[name] for name in COLUMN_NAMES[role] if name in by_lower), None
        )
        if found[role] is None and role in REQUIRED_ROLES:
            problems.append(
                f"{table.path}: no {role} column (looked for {', '.join(COLUMN_NAMES[role])}); "
                f"it has {', '.join(table.names) or 'no columns'}: name it with --{role}-column"
            )
    return found, problems


def parse_answers(value: Any) -> list[str | None] | None:
    """Answers from a cell: a string (or a JSON list in a string), a number, a list; None if empty."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("[") and text.endswith("]"):
            try:
                parsed = json.loads(text)
            except json.JSONDecodeError:
                return [value]
            if isinstance(parsed, list):
                return [answer_text(item) for item in parsed]
        return [value] if text else []
    if isinstance(value, (list, tuple)):
        return [answer_text(item) for item in value]
    text = answer_text(value)
    return [text] if text is not None else [None]


def _question_id(value: Any) -> int | str:
    """Ids as ints where they are whole numbers, else text."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    text = str(value).strip()
    return int(text) if text.isdigit() and (text == "0" or not text.startswith("0")) else text


# --------------------------------------------------------------------------
# The generic conversion.
# --------------------------------------------------------------------------


def _check_config(config: VqaConfig) -> list[tuple[str, Path]]:
    """(split, input path) pairs; every problem with the options is raised together."""
    problems = []
    entries: list[tuple[str, Path]] = []
    if bool(config.input) == bool(config.splits):
        problems.append(
            "give --input PATH... (split by --val-fraction) or --splits train=PATH val=PATH, not both"
        )
    entries += [("all", Path(p)) for p in config.input]
    for item in config.splits:
        name, _, value = item.partition("=")
        name = {"validation": "val", "test": "val"}.get(name, name)
        if name not in SPLITS or not value:
            problems.append(f"--splits entries look like train=PATH or val=PATH, got {item!r}")
        else:
            entries.append((name, Path(value)))
    if not 0 <= config.val_fraction < 1:
        problems.append(f"--val-fraction must be in [0, 1), got {config.val_fraction}")
    if config.splits and config.val_fraction:
        problems.append("--val-fraction splits --input; with --splits give a val file instead")
    if config.val_size < 0:
        problems.append(f"--val-size must be 0 or more, got {config.val_size}")
    if config.workers is not None and config.workers <= 0:
        problems.append(f"--workers must be positive, got {config.workers}")
    if config.image_root and not Path(config.image_root).is_dir():
        problems.append(f"--image-root {config.image_root} is not a folder")
    for _, path in entries:
        if not path.exists():
            problems.append(f"missing input {path}")
    if problems:
        raise ConversionError(
            "invalid conversion options:\n" + "\n".join(f"- {p}" for p in problems)
        )
    return entries


def _read_samples(
    config: VqaConfig,
    entries: list[tuple[str, Path]],
    issues: list[Issue],
    sources: list[EmbeddedSource],
) -> tuple[list[Sample], Path | None, list[str]]:
    """Every row of every input as a Sample; (samples, the common image root, notes)."""
    import pyarrow as pa

    tables: list[tuple[str, _Table]] = []
    problems: list[str] = []
    for split, path in entries:
        try:
            tables += [(split, table) for table in read_tables(path, config.image_root)]
        except ConversionError as error:
            problems.append(str(error))
    found_by_table = []
    for _, table in tables:
        found, missing = find_columns(table, config)
        problems += missing
        found_by_table.append(found)
    if problems:
        raise ConversionError("cannot read the input:\n" + "\n".join(f"- {p}" for p in problems))
    files: dict[tuple[Path, str], Path] = {}
    samples: list[Sample] = []
    notes: list[str] = []
    counter = 0
    for (split, table), found in zip(tables, found_by_table, strict=True):
        image_column = found["image"]
        assert image_column is not None
        embedded = False
        if table.arrow:
            column_type = _arrow_column_type(table.path, image_column)
            embedded = pa.types.is_binary(column_type) or pa.types.is_large_binary(column_type)
            if pa.types.is_struct(column_type):
                # datasets' Image feature: {bytes, path}; paths only when no row has bytes.
                embedded = _struct_has_bytes(table.path, image_column, column_type)
        columns = [
            name for role, name in found.items() if name and not (role == "image" and embedded)
        ]
        values = table.read(list(dict.fromkeys(columns)))
        source_index = len(sources)
        if embedded:
            sources.append(EmbeddedSource(table.path, image_column, table.image_root))
        used = {role: name for role, name in found.items() if name}
        notes.append(
            f"{table.path.name}: {table.num_rows()} rows; columns "
            + ", ".join(f"{role}={name}" for role, name in used.items())
            + (" (embedded images)" if embedded else "")
        )
        id_column, category_column = found["id"], found["category"]
        rows = len(values[found["question"]])  # type: ignore[index]
        for row in range(rows):
            where = table.where(row)
            question_id = _question_id(values[id_column][row]) if id_column else counter
            counter += 1
            raw_question = values[found["question"]][row]  # type: ignore[index]
            category = values[category_column][row] if category_column else None
            sample = Sample(
                question_id=question_id if question_id != "" else f"row{counter - 1}",
                question="" if raw_question is None else str(raw_question),
                answers=parse_answers(values[found["answer"]][row]),  # type: ignore[index]
                question_type="" if category is None else str(category),
                split=split,
                source_file=str(table.path),
                where=where,
            )
            samples.append(sample)
            if sample.answers is None:
                sample.answers = []
            if embedded:
                sample.embedded = (source_index, row)
                continue
            image = values[image_column][row]
            if isinstance(image, dict):
                image = image.get("path")
            if not isinstance(image, str) or not image.strip():
                flag(
                    issues,
                    sample,
                    "bad_image",
                    sample.source_file,
                    sample.question_id,
                    "no image in the row",
                    where,
                )
                continue
            key = (table.image_root, image)
            if key not in files:  # rows often share an image; Path objects are slow to build
                files[key] = Path(os.path.abspath(os.path.join(table.image_root, image.strip())))
            sample.image_file = files[key]
    roots = {Path(os.path.abspath(table.image_root)) for _, table in tables}
    common = (
        Path(os.path.abspath(config.image_root))
        if config.image_root
        else (roots.pop() if len(roots) == 1 else None)
    )
    return samples, common, notes


def _relative_image(file: Path, root: Path | None) -> str:
    """The record's image path: relative to the image folder when under it, else absolute."""
    path = str(file)  # already absolute
    prefix = os.path.join(str(root), "") if root is not None else None
    if prefix is not None and path.startswith(prefix):
        path = path[len(prefix) :]
    return path.replace(os.sep, "/")


def _split_by_fraction(
    samples: list[Sample], fraction: float, seed: int
) -> tuple[list[Sample], list[Sample]]:
    """(train, val): whole images drawn with ``seed`` into val until ``fraction`` of the questions."""
    wanted = round(fraction * len(samples))
    val, train = carve_subset(samples, wanted, seed)
    return train, val


def convert(config: VqaConfig) -> ConversionSummary:
    """Convert the inputs as ``config`` says and write the outputs; see the module docstring.

    Raises ConversionError (listing every problem at once) when the options are
    wrong or the input has problems that no --skip-* flag covers; no JSON
    output is written then.
    """
    entries = _check_config(config)
    issues: list[Issue] = []
    sources: list[EmbeddedSource] = []
    samples, image_root, notes = _read_samples(config, entries, issues, sources)
    by_split: dict[str, list[Sample]] = {}
    for sample in samples:
        by_split.setdefault(sample.split, []).append(sample)
    check_text(by_split, issues)
    out_dir = Path(config.out_dir)
    skipped_kinds = {
        kind
        for kind, on in (
            ("bad_question", config.skip_bad_questions),
            ("bad_answers", config.skip_bad_answers),
            ("duplicate_id", config.skip_duplicates),
            ("bad_image", config.skip_bad_images),
            ("shared_image", config.skip_shared_images),
        )
        if on
    }
    kept = [s for s in samples if s.problem is None]
    progress = None if config.progress else False
    if sources:
        image_root = Path(os.path.abspath(out_dir / IMAGES_DIR))
    relative: dict[Path, str] = {}
    for sample in kept:
        if sample.image_file is not None:
            if sample.image_file not in relative:
                relative[sample.image_file] = _relative_image(sample.image_file, image_root)
            sample.image = sample.image_key = relative[sample.image_file]
    check_image_files(kept, config.image_check, config.workers, progress, issues)
    will_fail = any(issue.kind not in skipped_kinds for issue in issues)
    extract_embedded(
        [s for s in kept if s.problem is None],
        sources,
        out_dir / IMAGES_DIR,
        decode=config.image_check,
        write=not will_fail,
        to_jpeg=False,
        workers=config.workers,
        progress=progress,
        issues=issues,
    )
    if "val" in by_split and "train" in by_split:
        val_images = {s.image_key for s in by_split["val"] if s.problem is None}
        for sample in by_split["train"]:
            if sample.problem is None and sample.image_key in val_images:
                flag(
                    issues,
                    sample,
                    "shared_image",
                    sample.source_file,
                    sample.question_id,
                    f"{sample.image} is also a val image",
                    sample.where,
                )
    raise_failing(issues, skipped_kinds, "VQA")
    kept = [s for s in samples if s.problem is None]
    kept.sort(key=lambda s: (s.split, id_sort_key(s.question_id)))
    if config.input:
        train, val = _split_by_fraction(kept, config.val_fraction, config.seed)
        outputs = {"train": train, **({"val": val} if config.val_fraction else {})}
        if config.val_fraction and not val:
            raise ConversionError(
                f"--val-fraction {config.val_fraction} of {len(kept)} questions puts no image in val; raise it"
            )
        if not train:
            raise ConversionError(
                f"--val-fraction {config.val_fraction} leaves no question for train"
            )
    else:
        outputs = {
            split: [s for s in kept if s.split == split] for split in SPLITS if split in by_split
        }
    val_subset = None
    if "val" in outputs and config.val_size:
        size = min(config.val_size, len(outputs["val"]))
        subset, _ = carve_subset(outputs["val"], size, config.seed)
        outputs["val_subset"] = subset
        val_subset = {
            "from": "val",
            "seed": config.seed,
            "requested": config.val_size,
            "size": len(subset),
        }
    elif "val" not in outputs:
        notes.append(
            "no val split: give --val-fraction or --splits val=PATH to evaluate between epochs"
        )
    if image_root is None:
        notes.append(
            "the inputs sit in different folders: records carry absolute image paths "
            "(give --image-root to make them relative)"
        )
    written = write_outputs(out_dir, outputs, config.prompt_suffix, "val")
    summary = ConversionSummary(
        source="files",
        out_dir=str(out_dir.resolve()),
        image_folder=str(image_root or "/"),
        image_check="decoded" if config.image_check else "presence only",
        prompt_suffix=config.prompt_suffix,
        splits={name: split_stats(group) for name, group in outputs.items()},
        files=written,
        skipped=skipped_summary(issues),
        filters={"val_fraction": config.val_fraction, "seed": config.seed},
        val_subset=val_subset,
        notes=notes,
    )
    write_atomic(out_dir / "summary.json", dump_json(summary.to_dict()))
    return summary


def build_parser(
    config_class: type,
    prog: str,
    description: str,
    epilog: str,
    negations: dict[str, str] | None = None,
):
    """The command line of a config dataclass (transformers' HfArgumentParser: one flag per field).

    ``negations``: extra ``--no-...`` flags -> the field they set to False
    (flag names the fronts keep from their earlier command line).
    """
    import argparse

    from transformers import HfArgumentParser

    parser = HfArgumentParser(
        config_class,
        prog=prog,
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    for flag_name, dest in (negations or {}).items():
        parser.add_argument(
            flag_name, dest=dest, action="store_false", help=f"sets {dest} to False"
        )
    return parser


def parse_config(parser: Any, argv: Sequence[str] | None):
    """The config dataclass of ``parser`` from ``argv`` (default: sys.argv)."""
    (config,) = parser.parse_args_into_dataclasses(args=list(argv) if argv is not None else None)
    return config


_EXAMPLES = """\
examples:
  python -m llava.data.vqa --input my_vqa.csv --image-root images/ --out playground/data/my_vqa \\
      --val-fraction 0.1 --seed 0
  python -m llava.data.vqa --splits train=train.jsonl val=val.jsonl --out playground/data/my_vqa
  python -m llava.data.vqa --input my_imagefolder/ --val-fraction 0.1 --answer-column label

then train with --data_path OUT/train.json --image_folder <the folder the summary names>,
and score with python -m llava.eval.eval_okvqa --answers FILE --annotations OUT/val_annotations.json.
See docs/CUSTOM_DATA.md.
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the converter; prints the summary, or every problem on stderr. Returns the exit status."""
    parser = build_parser(
        VqaConfig,
        "python -m llava.data.vqa",
        "Convert short-answer VQA data (JSON, JSONL, CSV/TSV, Parquet, Arrow, save_to_disk or "
        "imagefolder) to LLaVA training data plus the model_vqa question file and the scorer's "
        "annotations. Every input problem is reported at once; never uses the network.",
        _EXAMPLES,
    )
    config = parse_config(parser, argv)
    try:
        summary = convert(config)
    except ConversionError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(summary.format("VQA data"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
