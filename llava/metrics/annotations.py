"""Ground truth for scoring: read any of the annotation formats a VQA answer file is scored against.

Formats (docs/EVALUATION.md, "Scoring offline answers"):

* the converters' ``val_annotations.json``: ``{"format": "llava-okvqa-annotations/1",
  "questions": {"<question_id>": {"answers": [...], "question_type": ..., "question": ...,
  "choices": [...], "correct_choice_idx": int}}}`` (``choices`` only for A-OKVQA);
* a LLaVA JSON list whose records carry ``question_id`` (else ``id``) and ``answers``
  (``val_subset.json``), or an official A-OKVQA list (``aokvqa_v1p0_val.json``:
  ``direct_answers``, ``choices``, ``correct_choice_idx``);
* the official VQA / OK-VQA annotations (``mscoco_val2014_annotations.json``:
  ``{"annotations": [{"question_id", "question_type", "answers": [{"answer": ...}, ...]}]}``,
  scored on each answer's ``answer`` as the official evaluator does), optionally with
  the official questions file (``OpenEnded_mscoco_val2014_questions.json``), which must
  hold exactly the annotated question ids.

Question ids are compared as text (``42`` and ``"42"`` are the same question). Every
problem of a file is reported at once, each naming the question.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from llava.utils import plural

__all__ = [
    "ANNOTATIONS_FORMAT",
    "OKVQA_CATEGORIES",
    "Annotation",
    "ScoringError",
    "list_ids",
    "load_annotations",
]

ANNOTATIONS_FORMAT = "llava-okvqa-annotations/1"
# OK-VQA knowledge categories: the annotations' question_type code -> name (the scorer's per-category
# report and the OK-VQA converter's --categories filter both read it).
OKVQA_CATEGORIES = {
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
# Ids (or problems) listed in an error message before "... and N more".
LISTED_IDS = 20


class ScoringError(ValueError):
    """Answers or annotations cannot be scored; the message says why and names the ids."""


@dataclass(frozen=True)
class Annotation:
    """One question's ground truth. ``choices`` and ``correct_choice_idx`` only for multiple choice."""

    answers: tuple[str, ...]
    question_type: str | None = None
    question: str | None = None
    answer_type: str | None = None
    choices: tuple[str, ...] | None = None
    correct_choice_idx: int | None = None


def list_ids(ids: Sequence[str], limit: int = LISTED_IDS, separator: str = ", ") -> str:
    """The first ``limit`` ids joined, then ``... and N more``."""
    shown = separator.join(ids[:limit])
    return shown + (f"{separator}... and {len(ids) - limit} more" if len(ids) > limit else "")


def _read_json(path: str | os.PathLike) -> Any:
    from llava.utils import JsonFileError, load_json_file

    try:
        return load_json_file(path)
    except JsonFileError as error:
        raise ScoringError(str(error)) from None


class _Collector:
    """Builds ``question_id -> Annotation`` from one file, gathering every problem."""

    def __init__(self, path: str | os.PathLike):
        self.path = path
        self.annotations: dict[str, Annotation] = {}
        self.problems: list[str] = []

    def add(self, question_id: Any, where: str, record: Mapping, answers: Any) -> None:
        if question_id is None or isinstance(question_id, (dict, list)):
            self.problems.append(f"{where}: no usable question id")
            return
        key = str(question_id)
        before = len(self.problems)
        if key in self.annotations:
            self.problems.append(f"question {key} appears twice")
        if not isinstance(answers, list) or not answers or not all(isinstance(a, str) for a in answers):
            self.problems.append(
                f"question {key}: 'answers' must be a non-empty list of strings; found {str(answers)[:80]}"
            )
        choices = record.get("choices")
        correct = record.get("correct_choice_idx")
        if choices is not None or correct is not None:
            if not (isinstance(choices, list) and len(choices) >= 2 and all(isinstance(c, str) for c in choices)):
                self.problems.append(
                    f"question {key}: 'choices' must be a list of at least 2 strings; found {str(choices)[:80]}"
                )
            elif not (isinstance(correct, int) and not isinstance(correct, bool) and 0 <= correct < len(choices)):
                self.problems.append(
                    f"question {key}: 'correct_choice_idx' must be an index into its {len(choices)} choices; "
                    f"found {correct!r}"
                )
        if len(self.problems) > before:
            return
        question_type = record.get("question_type")
        question = record.get("question")
        self.annotations[key] = Annotation(
            answers=tuple(answers),
            # A-OKVQA has no categories: its converter writes "" (no category, not a category "").
            question_type=None if question_type in (None, "") else str(question_type),
            question=question if isinstance(question, str) else None,
            choices=None if choices is None else tuple(choices),
            correct_choice_idx=correct,
            answer_type=str(record["answer_type"]) if isinstance(record.get("answer_type"), str) else None,
        )

    def result(self) -> dict[str, Annotation]:
        if self.problems:
            raise ScoringError(
                f"{self.path}: {plural(len(self.problems), 'problem')}: " + list_ids(self.problems, separator="; ")
            )
        if not self.annotations:
            raise ScoringError(f"{self.path}: no annotated questions")
        return self.annotations


def _official_answer_texts(answers: Any) -> Any:
    """The official layout's answer dicts -> their ``answer`` strings (anything else as is, for the error)."""
    if isinstance(answers, list) and all(isinstance(a, Mapping) for a in answers):
        return [a.get("answer") for a in answers]
    return answers


def load_annotations(path: str | os.PathLike, questions_path: str | os.PathLike | None = None) -> dict[str, Annotation]:
    """``question_id`` (as text) -> :class:`Annotation`, in file order, from any supported format.

    ``questions_path``: the official questions file; its question texts are attached and its
    ids must equal the annotated ones (the error names those that differ).
    """
    data = _read_json(path)
    collector = _Collector(path)
    if isinstance(data, Mapping) and isinstance(data.get("questions"), Mapping):
        if data.get("format") not in (None, ANNOTATIONS_FORMAT):
            raise ScoringError(f"{path}: format {data.get('format')!r}; expected {ANNOTATIONS_FORMAT!r}")
        for question_id, question in data["questions"].items():
            if not isinstance(question, Mapping):
                collector.problems.append(f"question {question_id}: expected an object with 'answers'")
                continue
            collector.add(question_id, f"question {question_id}", question, question.get("answers"))
    elif isinstance(data, Mapping) and isinstance(data.get("annotations"), list):
        for index, annotation in enumerate(data["annotations"]):
            if not isinstance(annotation, Mapping):
                collector.problems.append(f"annotation {index}: expected an object")
                continue
            answers = _official_answer_texts(annotation.get("answers"))
            collector.add(annotation.get("question_id"), f"annotation {index}", annotation, answers)
    elif isinstance(data, list):
        for index, record in enumerate(data):
            if not isinstance(record, Mapping):
                collector.problems.append(f"record {index}: expected an object")
                continue
            question_id = record.get("question_id", record.get("id"))
            answers = record.get("answers", record.get("direct_answers"))
            collector.add(question_id, f"record {index}", record, answers)
    else:
        raise ScoringError(
            f"{path}: expected val_annotations.json ({{'format': {ANNOTATIONS_FORMAT!r}, 'questions': {{...}}}}), "
            "official annotations ({'annotations': [...]}) or a JSON list of records with 'answers'"
        )
    annotations = collector.result()
    if questions_path is not None:
        annotations = _attach_questions(annotations, questions_path)
    return annotations


def _attach_questions(annotations: dict[str, Annotation], questions_path: str | os.PathLike) -> dict[str, Annotation]:
    """The annotations with the official questions file's texts; its ids must equal theirs."""
    data = _read_json(questions_path)
    if not (isinstance(data, Mapping) and isinstance(data.get("questions"), list)):
        raise ScoringError(f"{questions_path}: expected the official questions file ({{'questions': [...]}})")
    texts: dict[str, str] = {}
    problems: list[str] = []
    for index, question in enumerate(data["questions"]):
        if not isinstance(question, Mapping) or "question_id" not in question:
            problems.append(f"question {index}: expected an object with 'question_id'")
            continue
        key = str(question["question_id"])
        if key in texts:
            problems.append(f"question {key} appears twice")
        texts[key] = str(question.get("question", ""))
    unannotated = [key for key in texts if key not in annotations]
    if unannotated:
        problems.append(f"{plural(len(unannotated), 'question')} without an annotation: {list_ids(unannotated)}")
    unasked = [key for key in annotations if key not in texts]
    if unasked:
        problems.append(f"{plural(len(unasked), 'annotated question')} not in the questions file: {list_ids(unasked)}")
    if problems:
        raise ScoringError(
            f"{questions_path}: " + "; ".join(problems) + " (questions and annotations of different splits?)"
        )
    return {
        key: Annotation(
            answers=annotation.answers,
            question_type=annotation.question_type,
            question=texts[key],
            choices=annotation.choices,
            correct_choice_idx=annotation.correct_choice_idx,
            answer_type=annotation.answer_type,
        )
        for key, annotation in annotations.items()
    }
