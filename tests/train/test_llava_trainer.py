"""LLaVATrainer's additions that need no model run: a non-finite metric never becomes the best."""

from __future__ import annotations

import torch

from llava.train.llava_trainer import LLaVATrainer


def test_a_non_finite_metric_never_becomes_best(tmp_path):
    from transformers import TrainingArguments

    args = TrainingArguments(
        output_dir=str(tmp_path),
        metric_for_best_model="vqa_accuracy",
        greater_is_better=True,
        use_cpu=True,
        report_to="none",
    )
    trainer = LLaVATrainer(model=torch.nn.Linear(2, 2), args=args)
    assert trainer._determine_best_metric({"eval_vqa_accuracy": float("nan")}, None) is False
    assert trainer.state.best_metric is None  # a NaN first evaluation is not "best"
    assert trainer._determine_best_metric({"eval_vqa_accuracy": 40.0}, None) is True
    assert trainer._determine_best_metric({"eval_vqa_accuracy": float("inf")}, None) is False
    assert trainer._determine_best_metric({"eval_vqa_accuracy": 30.0}, None) is False
    assert trainer.state.best_metric == 40.0


def test_the_evaluator_and_the_guard_are_constructor_arguments(tmp_path):
    from transformers import TrainingArguments

    from llava.train.evaluation import LLaVAEvaluator
    from llava.train.guards import DivergenceGuard

    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none")
    validation = [{"input_ids": torch.tensor([1, 2]), "labels": torch.tensor([1, 2])}]
    evaluator = LLaVAEvaluator(None, [], image_folder=None, eval_dataset=validation, data_collator=lambda batch: batch)
    guard = DivergenceGuard(3, str(tmp_path))
    trainer = LLaVATrainer(model=torch.nn.Linear(2, 2), args=args, evaluator=evaluator, divergence_guard=guard)
    assert trainer.llava_evaluator is evaluator and trainer.divergence_guard is guard
    assert trainer.eval_dataset is validation  # the evaluator's validation set is the eval dataset
    plain = LLaVATrainer(model=torch.nn.Linear(2, 2), args=args)
    assert plain.llava_evaluator is None and plain.divergence_guard is None and plain.eval_dataset is None
