"""LLaVATrainer's additions that need no model run: a non-finite metric never becomes the best."""

from __future__ import annotations

import torch

from llava.train.llava_trainer import LLaVATrainer


def test_a_non_finite_metric_never_becomes_best(tmp_path):
    from transformers import TrainingArguments

    args = TrainingArguments(output_dir=str(tmp_path), metric_for_best_model="vqa_accuracy", greater_is_better=True,
                             use_cpu=True, report_to="none")
    trainer = LLaVATrainer(model=torch.nn.Linear(2, 2), args=args)
    assert trainer._determine_best_metric({"eval_vqa_accuracy": float("nan")}, None) is False
    assert trainer.state.best_metric is None  # a NaN first evaluation is not "best"
    assert trainer._determine_best_metric({"eval_vqa_accuracy": 40.0}, None) is True
    assert trainer._determine_best_metric({"eval_vqa_accuracy": float("inf")}, None) is False
    assert trainer._determine_best_metric({"eval_vqa_accuracy": 30.0}, None) is False
    assert trainer.state.best_metric == 40.0
