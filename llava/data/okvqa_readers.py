"""Reading OK-VQA: the official JSON files and the Hugging Face export layouts, into converter samples.

Applies OK-VQA's own rules (the COCO 2014 path of each image, question ids as
numbers, image ids derived from question ids when an export has none) and
flags every problem as an ``Issue``. ``llava.data.okvqa`` converts what this
reads; the layouts are listed in docs/OKVQA.md.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llava.data import conversion, tables
from llava.data.conversion import ConversionError, EmbeddedSource, Issue, Sample
from llava.utils import JsonFileError, load_json_file

SPLITS = ("train", "val")
COCO_SPLITS = {"train": "train2014", "val": "val2014"}
QUESTION_FILES = {split: f"OpenEnded_mscoco_{COCO_SPLITS[split]}_questions.json" for split in SPLITS}
ANNOTATION_FILES = {split: f"mscoco_{COCO_SPLITS[split]}_annotations.json" for split in SPLITS}
_COCO_FILE_NAME = re.compile(r"COCO_(?:train|val)2014_0*(\d+)\.")


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
        data = load_json_file(path)
    except OSError as error:
        raise ConversionError(f"cannot read {path}: {error}") from error
    except JsonFileError as error:
        raise ConversionError(str(error)) from None
    if not isinstance(data, dict) or not isinstance(data.get(key), list):
        raise ConversionError(f"{path} is not an OK-VQA file: it has no {key!r} list")
    return data[key]


def read_official_split(okvqa_dir: Path, coco_dir: Path, split: str, issues: list[Issue]) -> list[Sample]:
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
            conversion.flag(issues, None, "duplicate_id", str(annotation_path), question_id, "annotated twice")
            continue
        by_id[question_id] = annotation
    samples = []
    for question in questions:
        question_id = _question_id(question.get("question_id"))
        annotation = by_id.get(question_id)
        image_id = _as_image_id(question.get("image_id"))
        sample = _sample(question_id, image_id, question.get("question"), None, None, split, str(question_path))
        samples.append(sample)
        if annotation is None:
            reason = f"not in {annotation_path.name}"
            conversion.flag_sample(issues, sample, "missing_annotation", reason)
            continue
        raw = annotation.get("answers")
        sample.answers = [conversion.answer_text(a) for a in raw] if isinstance(raw, list) else []
        sample.question_type = annotation.get("question_type")
        if image_id is None:
            conversion.flag_sample(issues, sample, "bad_question", "no image_id")
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


def read_hf_split(
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
        layout = _detect_layout(path, tables.read_schema_names(path))
        wanted = ["question_id", "question", layout.answers]
        wanted += [name for name in (layout.image_id, layout.question_type) if name]
        columns = tables.read_arrow_columns(path, wanted)
        paths = (tables.image_column_paths(path) if layout.image_id is None else None) or [None] * len(
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
                answers = [conversion.answer_text(a) for a in raw_answers] if isinstance(raw_answers, list) else []
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
                conversion.flag_sample(issues, sample, "missing_annotation", "no answers in the row")
            if image_id is None:
                conversion.flag_sample(issues, sample, "bad_image", "no COCO image id in the row")
    if derived:
        notes.append(
            f"{split}: {derived} image ids derived from question ids (question_id // 10), "
            "as the export has no image id column"
        )
    return samples
