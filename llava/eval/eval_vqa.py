"""Score a VQA answers file: VQA accuracy (direct answers) or choice accuracy (multiple choice).

    python -m llava.eval.eval_vqa --answers answers/val.jsonl \\
        --annotations playground/data/okvqa/val_annotations.json [--normalization official] [--json scores.json]
    python -m llava.eval.eval_vqa --task multiple-choice --answers answers/val_mc.jsonl \\
        --annotations playground/data/aokvqa/val_annotations.json

Answers are JSONL (``question_id`` and ``text`` or ``prediction``); annotations
any format of :mod:`llava.metrics.annotations`. The flags, the checks and which
number to compare with which paper: docs/EVALUATION.md ("Scoring offline answers").
``python -m llava.eval.eval_okvqa`` is this scorer for direct answers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from typing import Any

from llava.flags import Parser
from llava.metrics.annotations import (
    OKVQA_CATEGORIES,
    Annotation,
    ScoringError,
    list_ids,
    load_annotations,
)
from llava.metrics.choices import score_choices
from llava.metrics.normalization import DEFAULT_NORMALIZATION, NORMALIZATIONS
from llava.metrics.vqa import score_predictions
from llava.utils import jsonl_records, plural, write_atomic

__all__ = [
    "TASKS",
    "ScoringError",
    "build_parser",
    "build_records",
    "format_report",
    "load_answers",
    "main",
    "score_files",
]

TASKS = ("direct", "multiple-choice")


def load_answers(path: str | os.PathLike) -> dict[str, str]:
    """``question_id`` (as text) -> answer text, from a JSONL answers file, in file order.

    Each line needs ``question_id`` and ``text`` (or ``prediction``). Every bad line is
    reported at once, by line number; a question answered twice names both lines.
    """
    answers: dict[str, str] = {}
    first_line: dict[str, int] = {}
    problems: list[str] = []
    for line_number, record in jsonl_records(path, problems):
        if not isinstance(record, Mapping) or "question_id" not in record:
            problems.append(f"{path}:{line_number}: an answer needs 'question_id' and 'text'")
            continue
        text = record.get("text", record.get("prediction"))
        if not isinstance(text, str):
            problems.append(f"{path}:{line_number}: 'text' must be a string; found {text!r}")
            continue
        question_id = str(record["question_id"])
        if question_id in answers:
            problems.append(
                f"{path}:{line_number}: question {question_id} is answered again "
                f"(first on line {first_line[question_id]}); keep one answer per question"
            )
            continue
        answers[question_id] = text
        first_line[question_id] = line_number
    if problems:
        raise ScoringError(list_ids(problems, separator="\n"))
    return answers


def build_records(
    answers: Mapping[str, str],
    annotations: Mapping[str, Annotation],
    partial: bool = False,
    task: str = "direct",
) -> list[dict]:
    """The records the scoring functions take, in annotation order.

    Raises :class:`ScoringError` naming answers whose question is not annotated, annotated
    questions without an answer (unless ``partial``) and, for ``multiple-choice``,
    questions without choices.
    """
    problems = []
    unknown = [question_id for question_id in answers if question_id not in annotations]
    if unknown:
        problems.append(
            f"{len(unknown)} answers are for questions not in the annotations: {list_ids(unknown)} "
            "(wrong annotations file or split?)"
        )
    unanswered = [question_id for question_id in annotations if question_id not in answers]
    if unanswered and not partial:
        problems.append(
            f"{len(unanswered)} of {len(annotations)} annotated questions have no answer: {list_ids(unanswered)}; "
            "finish answering them (model_vqa resumes where it stopped) or pass --partial to score the answered ones"
        )
    if task == "multiple-choice":
        no_choices = [key for key, annotation in annotations.items() if key in answers and annotation.choices is None]
        if no_choices:
            problems.append(
                f"{len(no_choices)} questions have no 'choices'/'correct_choice_idx' for --task multiple-choice: "
                f"{list_ids(no_choices)}"
            )
    if problems:
        raise ScoringError("; ".join(problems))
    records = []
    for question_id, annotation in annotations.items():
        if question_id not in answers:
            continue
        record: dict[str, Any] = {
            "question_id": question_id,
            "prediction": answers[question_id],
            "answers": list(annotation.answers),
            "question_type": annotation.question_type,
        }
        if annotation.answer_type is not None:
            record["answer_type"] = annotation.answer_type
        if annotation.choices is not None:
            record["choices"] = list(annotation.choices)
            record["correct_choice_idx"] = annotation.correct_choice_idx
        records.append(record)
    return records


def score_files(
    answers_path: str | os.PathLike,
    annotations_path: str | os.PathLike,
    stem: bool = False,
    partial: bool = False,
    normalization: str = DEFAULT_NORMALIZATION,
    task: str = "direct",
    questions_path: str | os.PathLike | None = None,
) -> dict:
    """The scores of an answers file against an annotations file, plus what was scored.

    Direct: :func:`llava.metrics.vqa.score_predictions`'s dict (``vqa_accuracy``,
    ``exact_match``, ``count``, ``per_category``, ``per_question``, ``normalization``,
    ``stem``). Multiple choice: :func:`llava.metrics.choices.score_choices`'s
    (``choice_accuracy``, ``count``, ``unparsed``, ``per_question``). Both with ``task``,
    ``answers``, ``annotations`` (the paths) and ``annotated`` (questions annotated).
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; use one of {', '.join(TASKS)}")
    from llava.run_record import evaluated_questions

    answers = load_answers(answers_path)
    annotations = load_annotations(annotations_path, questions_path)
    # A run's eval/epoch_N.jsonl covers the run's validation set: score it on exactly those questions.
    evaluated = evaluated_questions(answers_path)
    if evaluated is not None:
        annotations = {key: value for key, value in annotations.items() if key in evaluated[0]}
    records = build_records(answers, annotations, partial, task)
    if task == "multiple-choice":
        scores = score_choices(records)
    else:
        scores = score_predictions(records, stem=stem, normalization=normalization)
    scores.update(
        task=task,
        answers=str(answers_path),
        annotations=str(annotations_path),
        annotated=len(annotations),
    )
    if evaluated is not None:
        scores["validation_data_path"] = evaluated[1]  # the run's own subset (eval/run.json)
    return scores


def format_report(scores: Mapping, title: str = "VQA") -> str:
    """The scores as a few readable lines; a direct-answer report names the normalisation.

    ``title`` names the data set in the first line (``"OK-VQA scores for ..."``).
    """
    annotated = scores.get("annotated", scores["count"])
    where = f"{scores.get('answers', 'the answers')} ({scores['count']} of {plural(annotated, 'question')}"
    if scores.get("validation_data_path"):
        where += f" of the run's validation set {scores['validation_data_path']}"
    if "choice_accuracy" in scores:
        return "\n".join(
            [
                f"{title} multiple-choice scores for {where})",
                f"  choice accuracy {scores['choice_accuracy']:6.2f}",
                f"  unparsed        {scores['unparsed']:6d}  (answers naming no option; counted wrong)",
            ]
        )
    names = dict(OKVQA_CATEGORIES)
    lines = [
        f"{title} scores for {where}; normalization {scores['normalization']}, "
        f"{'stemmed' if scores['stem'] else 'not stemmed'})",
        f"  VQA accuracy  {scores['vqa_accuracy']:6.2f}",
        f"  exact match   {scores['exact_match']:6.2f}",
    ]
    if scores["per_category"]:
        lines.append("  VQA accuracy per category:")
        for category, value in scores["per_category"].items():
            name = names.get(category, "")
            lines.append(f"    {category:<6} {value:6.2f}  {name}".rstrip())
    return "\n".join(lines)


def build_parser(prog: str = "python -m llava.eval.eval_vqa", with_task: bool = True) -> argparse.ArgumentParser:
    from llava.entry import HelpFormatter

    parser = Parser(
        formatter_class=HelpFormatter,
        prog=prog,
        description=(
            "Score model_vqa answers: VQA accuracy (direct answers) or choice accuracy (multiple choice)."
            if with_task
            else "Score model_vqa answers to OK-VQA: VQA accuracy of the direct answers "
            "(multiple choice: python -m llava.eval.eval_vqa --task multiple-choice)."
        ),
    )
    parser.add_argument("--answers", required=True, help="JSONL answers: question_id and text (model_vqa output)")
    parser.add_argument(
        "--annotations",
        required=True,
        help=(
            "val_annotations.json, official mscoco_val2014_annotations.json, aokvqa_v1p0_val.json "
            "or a LLaVA JSON with 'answers'"
        ),
    )
    parser.add_argument(
        "--questions",
        default=None,
        help="official questions file (OpenEnded_mscoco_val2014_questions.json); optional",
    )
    if with_task:
        parser.add_argument(
            "--task",
            choices=TASKS,
            default="direct",
            help="direct answers (VQA accuracy) or multiple choice (letters)",
        )
    else:
        parser.set_defaults(task="direct")
    parser.add_argument(
        "--normalization",
        choices=NORMALIZATIONS,
        default=DEFAULT_NORMALIZATION,
        help=(
            "answer normalisation: lmms-eval (EvalAI processor, LLaVA-family papers), "
            "official (GT-Vision-Lab/VQA vqaEval.py as downloaded today, commit a013f00) "
            "or official-2015 (its 2015 beta)"
        ),
    )
    parser.add_argument("--stem", action="store_true", help="also stem predictions and answers before matching")
    parser.add_argument(
        "--partial",
        action="store_true",
        help="score only the annotated questions that have an answer",
    )
    parser.add_argument("--json", dest="json_path", default=None, help="also write the scores to this JSON file")
    return parser


def main(argv: list[str] | None = None, parser: argparse.ArgumentParser | None = None, title: str = "VQA") -> dict:
    """Parse the flags (``parser``: default :func:`build_parser`), score, print the report, write ``--json``."""
    args = (parser or build_parser()).parse_args(argv)
    try:
        scores = score_files(
            args.answers,
            args.annotations,
            stem=args.stem,
            partial=args.partial,
            normalization=args.normalization,
            task=args.task,
            questions_path=args.questions,
        )
    except (ScoringError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from error
    print(format_report(scores, title))
    if args.json_path:
        os.makedirs(os.path.dirname(os.path.abspath(args.json_path)), exist_ok=True)
        write_atomic(args.json_path, json.dumps(scores, indent=1) + "\n")
    return scores


if __name__ == "__main__":
    from llava.entry import run

    sys.exit(run(main))
