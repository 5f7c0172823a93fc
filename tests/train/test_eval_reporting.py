"""llava/train/eval_reporting.py: tags, history.json (resumed runs, NaN as null) and the files."""

from __future__ import annotations

import json

from llava.train.eval_reporting import EVAL_FOLDER, HISTORY_FILE, epoch_tag, read_history
from llava.train.evaluation import LLaVAEvaluator


def test_epoch_tags():
    assert epoch_tag(0, 0) == "epoch_0" and epoch_tag(2.0, 18) == "epoch_2" and epoch_tag(None, 0) == "epoch_0"
    assert epoch_tag(1.5, 13) == "step_13"


def test_history_keeps_earlier_evaluations_and_replaces_later_ones(tmp_path):
    evaluator = LLaVAEvaluator(None, [], image_folder=None, output_dir=tmp_path)
    for epoch, step, loss in [(0, 0, 3.0), (1, 9, 2.0), (2, 18, 1.5), (1, 9, 2.5)]:  # resumed at step 9
        evaluator.write_outputs(epoch, step, loss, None)
    history = read_history(tmp_path / EVAL_FOLDER)
    assert [(h["tag"], h["eval_loss"]) for h in history] == [("epoch_0", 3.0), ("epoch_1", 2.5)]
    assert json.loads((tmp_path / EVAL_FOLDER / HISTORY_FILE).read_text()) == history


def test_a_nan_evaluation_is_written_as_null(tmp_path):
    evaluator = LLaVAEvaluator(None, [], image_folder=None, output_dir=tmp_path)
    evaluator.write_outputs(
        1,
        9,
        float("nan"),
        {"vqa_accuracy": float("nan"), "exact_match": 0.0, "per_category": {"other": float("inf")}, "count": 4},
    )
    text = (tmp_path / EVAL_FOLDER / HISTORY_FILE).read_text()
    assert "NaN" not in text and "Infinity" not in text
    entry = json.loads(text)[0]
    assert entry["eval_loss"] is None and entry["vqa_accuracy"] is None and entry["per_category"] == {"other": None}
