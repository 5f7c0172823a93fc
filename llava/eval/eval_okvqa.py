"""Score answers to OK-VQA questions: VQA accuracy, exact match and accuracy per category.

    python -m llava.eval.eval_okvqa --answers answers/okvqa_val.jsonl \
        --annotations playground/data/okvqa/val_annotations.json [--stem] [--json scores.json]

``--answers``: JSONL, one ``{"question_id": ..., "text": "..."}`` per line, as
``python -m llava.eval.model_vqa`` writes them (lines with ``prediction``
instead of ``text``, such as the ``output_dir/eval/epoch_{k}.jsonl`` files the
training evaluation writes, work too, so those can be re-scored, for example
with ``--stem``).

``--annotations``: the ``val_annotations.json`` of ``python -m llava.data.okvqa``
(``{"format": "llava-okvqa-annotations/1", "questions": {"<question_id>":
{"answers": [...], "question_type": ...}}}``), or a LLaVA-format JSON list whose
records carry ``question_id`` (else ``id``) and ``answers`` (``val_subset.json``).

Question ids are compared as text (``42`` and ``"42"`` are the same question).
Every annotated question needs an answer and every answer an annotated
question; the error names the ids that do not match. ``--partial`` scores only
the annotated questions that have an answer (the count says how many).

The numbers come from :func:`llava.eval.vqa_accuracy.score_predictions`, the
function the training evaluation uses, so the same predictions give the same
numbers here and in W&B. ``--stem`` also stems predictions and answers before
matching (OK-VQA v1.1 answers are stemmed); the report says which was used.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from llava.eval.vqa_accuracy import score_predictions

__all__ = ["ScoringError", "build_records", "format_report", "load_annotations", "load_answers", "main", "score_files"]

ANNOTATIONS_FORMAT = "llava-okvqa-annotations/1"
# Ids listed in an error message before "... and N more".
LISTED_IDS = 20


class ScoringError(ValueError):
    """The answers and annotations cannot be scored together; the message says why and which ids."""


def _list_ids(ids: Sequence[str]) -> str:
    shown = ", ".join(ids[:LISTED_IDS])
    return shown + (f" ... and {len(ids) - LISTED_IDS} more" if len(ids) > LISTED_IDS else "")


def load_answers(path: str | os.PathLike) -> dict[str, str]:
    """``question_id`` (as text) -> answer text, from a JSONL answers file, in file order.

    Each line needs ``question_id`` and ``text`` (or ``prediction``). A question
    answered twice is an error (with both line numbers).
    """
    answers: dict[str, str] = {}
    first_line: dict[str, int] = {}
    with open(path, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise ScoringError(f"{path}:{line_number}: not valid JSON ({error.msg})") from error
            if not isinstance(record, Mapping) or "question_id" not in record:
                raise ScoringError(f"{path}:{line_number}: an answer needs 'question_id' and 'text'")
            text = record.get("text", record.get("prediction"))
            if not isinstance(text, str):
                raise ScoringError(f"{path}:{line_number}: 'text' must be a string; found {text!r}")
            question_id = str(record["question_id"])
            if question_id in answers:
                raise ScoringError(
                    f"{path}:{line_number}: question {question_id} is answered again "
                    f"(first on line {first_line[question_id]}); keep one answer per question"
                )
            answers[question_id] = text
            first_line[question_id] = line_number
    return answers


def _check_answer_list(where: str, answers: Any) -> list[str]:
    if not isinstance(answers, list) or not answers or not all(isinstance(a, str) for a in answers):
        raise ScoringError(f"{where}: 'answers' must be a non-empty list of strings; found {str(answers)[:80]}")
    return answers


def load_annotations(path: str | os.PathLike) -> dict[str, dict]:
    """``question_id`` (as text) -> ``{"answers": [...], "question_type": str | None}``, in file order."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ScoringError(f"{path}: not valid JSON ({error.msg} at line {error.lineno})") from error
    annotations: dict[str, dict] = {}
    if isinstance(data, Mapping) and isinstance(data.get("questions"), Mapping):
        if data.get("format") not in (None, ANNOTATIONS_FORMAT):
            raise ScoringError(f"{path}: format {data.get('format')!r}; expected {ANNOTATIONS_FORMAT!r}")
        for question_id, question in data["questions"].items():
            where = f"{path}: question {question_id}"
            if not isinstance(question, Mapping):
                raise ScoringError(f"{where}: expected an object with 'answers'")
            annotations[str(question_id)] = {
                "answers": _check_answer_list(where, question.get("answers")),
                "question_type": question.get("question_type"),
            }
    elif isinstance(data, list):
        for index, record in enumerate(data):
            if not isinstance(record, Mapping) or "answers" not in record:
                raise ScoringError(f"{path}: record {index} has no 'answers'")
            question_id = record.get("question_id", record.get("id"))
            if question_id is None:
                raise ScoringError(f"{path}: record {index} has neither 'question_id' nor 'id'")
            key = str(question_id)
            if key in annotations:
                raise ScoringError(f"{path}: question {key} appears twice")
            annotations[key] = {
                "answers": _check_answer_list(f"{path}: record {index}", record["answers"]),
                "question_type": record.get("question_type"),
            }
    else:
        raise ScoringError(
            f"{path}: expected val_annotations.json ({{'format': {ANNOTATIONS_FORMAT!r}, 'questions': {{...}}}}) "
            "or a LLaVA JSON list with 'answers'"
        )
    return annotations


def build_records(answers: Mapping[str, str], annotations: Mapping[str, Mapping], partial: bool = False) -> list[dict]:
    """The records :func:`score_predictions` takes, in annotation order.

    Raises :class:`ScoringError` naming answers whose question is not annotated, and
    (unless ``partial``) annotated questions without an answer.
    """
    unknown = [question_id for question_id in answers if question_id not in annotations]
    if unknown:
        raise ScoringError(
            f"{len(unknown)} answers are for questions not in the annotations: {_list_ids(unknown)} "
            "(wrong annotations file or split?)"
        )
    unanswered = [question_id for question_id in annotations if question_id not in answers]
    if unanswered and not partial:
        raise ScoringError(
            f"{len(unanswered)} of {len(annotations)} annotated questions have no answer: {_list_ids(unanswered)}; "
            "finish answering them (model_vqa resumes where it stopped) or pass --partial to score the answered ones"
        )
    return [
        {
            "question_id": question_id,
            "prediction": answers[question_id],
            "answers": annotation["answers"],
            "question_type": annotation.get("question_type"),
        }
        for question_id, annotation in annotations.items()
        if question_id in answers
    ]


def score_files(
    answers_path: str | os.PathLike, annotations_path: str | os.PathLike, stem: bool = False, partial: bool = False
) -> dict:
    """:func:`score_predictions` of an answers file against an annotations file, plus what was scored.

    Returns its dict (``vqa_accuracy``, ``exact_match``, ``count``, ``per_category``,
    ``stem``) with ``answers``, ``annotations`` (the paths) and ``annotated`` (how many
    questions the annotations hold).
    """
    answers = load_answers(answers_path)
    annotations = load_annotations(annotations_path)
    scores = score_predictions(build_records(answers, annotations, partial), stem=stem)
    scores.update(answers=str(answers_path), annotations=str(annotations_path), annotated=len(annotations))
    return scores


def _category_names() -> dict[str, str]:
    try:
        from llava.data.okvqa import CATEGORIES
    except ImportError:  # the converter's optional dependencies are missing: codes only
        return {}
    return dict(CATEGORIES)


def format_report(scores: Mapping) -> str:
    """The scores as a few readable lines (overall, exact match, then each category)."""
    names = _category_names()
    lines = [
        f"OK-VQA scores for {scores.get('answers', 'the answers')} "
        f"({scores['count']} of {scores.get('annotated', scores['count'])} questions; "
        f"normalised answers{', stemmed' if scores['stem'] else ', not stemmed'})",
        f"  VQA accuracy  {scores['vqa_accuracy']:6.2f}",
        f"  exact match   {scores['exact_match']:6.2f}",
    ]
    if scores["per_category"]:
        lines.append("  VQA accuracy per category:")
        for category, value in scores["per_category"].items():
            name = names.get(category, "")
            lines.append(f"    {category:<6} {value:6.2f}  {name}".rstrip())
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m llava.eval.eval_okvqa",
        description="Score model_vqa answers against OK-VQA annotations (VQA accuracy, exact match, per category).",
    )
    parser.add_argument("--answers", required=True, help="JSONL answers: question_id and text (model_vqa output)")
    parser.add_argument("--annotations", required=True, help="val_annotations.json (or a LLaVA JSON with 'answers')")
    parser.add_argument("--stem", action="store_true", help="also stem predictions and answers before matching")
    parser.add_argument("--partial", action="store_true", help="score only the annotated questions that have an answer")
    parser.add_argument("--json", dest="json_path", default=None, help="also write the scores to this JSON file")
    return parser


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    try:
        scores = score_files(args.answers, args.annotations, stem=args.stem, partial=args.partial)
    except (ScoringError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from error
    print(format_report(scores))
    if args.json_path:
        Path(args.json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_path).write_text(json.dumps(scores, indent=1) + "\n", encoding="utf-8")
    return scores


if __name__ == "__main__":
    main()
