"""Test helper: run the real ``train()`` with evaluation between epochs, then report as JSON.

Launched like the entry point (``python ...`` or ``deepspeed --num_gpus 2 ...``) with
upstream flags, the evaluation flags and ``--report FILE``. Rank 0 writes the
Trainer's ``log_history``, ``best_metric`` and ``best_model_checkpoint``.

Until the stock files carry the evaluation wiring (docs/EVALUATION.md, "Wiring"),
this script applies that same wiring from outside before calling ``train()``:
the argument classes gain the evaluation fields, ``validate`` gains
``validate_evaluation_args``, ``build_trainer`` builds the evaluator and hands its
``eval_dataset`` to a trainer whose ``evaluation_loop`` hands evaluations to it. Once ``LLaVATrainer`` has ``llava_evaluator``, it calls ``train()`` as is.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from llava.train import arguments, steps  # noqa: E402
from llava.train.evaluation import (  # noqa: E402
    EvaluationDataArguments,
    EvaluationTrainingArguments,
    build_evaluator,
    validate_evaluation_args,
)
from llava.train.llava_trainer import LLaVATrainer  # noqa: E402
from llava.train.train import train  # noqa: E402


def stock_is_wired() -> bool:
    return hasattr(LLaVATrainer, "llava_evaluator") and "validation_data_path" in {
        item.name for item in dataclasses.fields(arguments.DataArguments)
    }


class EvaluatingTrainer(LLaVATrainer):
    """The lines docs/EVALUATION.md asks ``LLaVATrainer`` to gain."""

    llava_evaluator = None

    def evaluation_loop(self, dataloader, description, prediction_loss_only=None, ignore_keys=None,
                        metric_key_prefix="eval"):
        if self.llava_evaluator is not None and description == "Evaluation":
            return self.llava_evaluator.evaluation_loop(self, metric_key_prefix)
        return super().evaluation_loop(dataloader, description, prediction_loss_only, ignore_keys, metric_key_prefix)


@dataclasses.dataclass
class WiredDataArguments(arguments.DataArguments, EvaluationDataArguments):
    """``DataArguments`` with the evaluation fields (module level: checkpoints pickle the arguments)."""


@dataclasses.dataclass
class WiredTrainingArguments(arguments.TrainingArguments, EvaluationTrainingArguments):
    """``TrainingArguments`` with the evaluation fields."""


def wire_evaluation() -> None:
    """Apply the stock-file wiring of docs/EVALUATION.md from outside (this process only)."""
    arguments.DataArguments = WiredDataArguments
    arguments.TrainingArguments = WiredTrainingArguments
    checks = [check for check in arguments._CHECKS if check.__name__ != "_check_evaluation"]
    arguments._CHECKS = (*checks, validate_evaluation_args)

    seen = {}
    check_training_data = steps.check_training_data

    def check_and_remember(tokenizer, template, model_args, data_args, training_args):
        seen.update(template=template, model_args=model_args, data_args=data_args)
        return check_training_data(tokenizer, template, model_args, data_args, training_args)

    def build_trainer(model, tokenizer, training_args, data_module, callbacks=None):
        evaluator = build_evaluator(tokenizer, seen["template"], seen["model_args"], seen["data_args"], training_args)
        if evaluator is not None:
            data_module = {**data_module, "eval_dataset": evaluator.eval_dataset}
        trainer = EvaluatingTrainer(
            model=model, processing_class=tokenizer, args=training_args, callbacks=callbacks, **data_module
        )
        trainer.llava_evaluator = evaluator
        return trainer

    steps.check_training_data = check_and_remember
    steps.build_trainer = build_trainer


def main() -> None:
    argv = sys.argv[1:]
    index = argv.index("--report")
    report_path = Path(argv[index + 1])
    del argv[index : index + 2]
    if not stock_is_wired():
        wire_evaluation()
    trainer = train(argv=argv)
    if trainer.args.process_index == 0:
        report = {
            "log_history": trainer.state.log_history,
            "best_metric": trainer.state.best_metric,
            "best_model_checkpoint": trainer.state.best_model_checkpoint,
            "best_global_step": trainer.state.best_global_step,
            "world_size": trainer.args.world_size,
        }
        report_path.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
