"""Score answers to OK-VQA questions: the direct-answer front of ``python -m llava.eval.eval_vqa``.

    python -m llava.eval.eval_okvqa --answers answers/okvqa_val.jsonl \
        --annotations playground/data/okvqa/val_annotations.json \
        [--normalization lmms-eval|official|official-2015] [--stem] [--partial] [--json scores.json]
    python -m llava.eval.eval_okvqa --answers answers/okvqa_val.jsonl \
        --annotations mscoco_val2014_annotations.json [--questions OpenEnded_mscoco_val2014_questions.json]

Prints VQA accuracy, exact match and accuracy per knowledge category, naming the
normalisation: ``lmms-eval`` (default; the number LLaVA-family papers report) or
``official`` (the GT-Vision-Lab/VQA evaluator's). The annotations may be the converter's
``val_annotations.json``, a LLaVA JSON with ``answers`` (``val_subset.json``) or the
official files, read directly. ``--json FILE`` writes ``vqa_accuracy`` (percent),
``exact_match``, ``per_category``, ``normalization`` and ``per_question`` (question id ->
accuracy in 0..1). Missing, duplicate or unknown question ids are reported by id.
Everything is in :mod:`llava.eval.eval_vqa` (``--task multiple-choice`` for A-OKVQA's
choices); docs/EVALUATION.md is the guide.
"""

from __future__ import annotations

import sys

from llava.eval.eval_vqa import build_parser as _build_vqa_parser
from llava.eval.eval_vqa import build_records, format_report, load_answers, score_files
from llava.eval.eval_vqa import main as _main
from llava.metrics.annotations import ANNOTATIONS_FORMAT, ScoringError, load_annotations

__all__ = [
    "ANNOTATIONS_FORMAT",
    "ScoringError",
    "build_parser",
    "build_records",
    "format_report",
    "load_annotations",
    "load_answers",
    "main",
    "score_files",
]


def build_parser():
    """``eval_vqa``'s parser for direct answers only (no ``--task``)."""
    return _build_vqa_parser(prog="python -m llava.eval.eval_okvqa", with_task=False)


def main(argv: list[str] | None = None) -> dict:
    return _main(argv, parser=build_parser(), title="OK-VQA")


if __name__ == "__main__":
    from llava.entry import run

    sys.exit(run(main))
