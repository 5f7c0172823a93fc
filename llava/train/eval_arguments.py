"""The evaluation-between-epochs flags (:class:`EvalArguments`, on ``TrainingArguments``) and their checks.

docs/EVALUATION.md is the manual (flags, metric names, files).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from enum import Enum

from llava.metrics.normalization import DEFAULT_NORMALIZATION, NORMALIZATIONS

__all__ = ["GENERATION_METRICS", "EvalArguments", "needs_generation", "validate_evaluation_args"]

# Metrics that exist only when answers are generated (metric_for_best_model may name them).
GENERATION_METRICS = ("vqa_accuracy", "exact_match", "choice_accuracy")


@dataclass
class EvalArguments:
    """Where the validation records are and how each evaluation generates and reports.

    ``TrainingArguments`` carries these fields (``llava.train.arguments``). transformers'
    own ``--eval_strategy``, ``--per_device_eval_batch_size`` (also the generation batch),
    ``--eval_on_start`` (evaluation 0, before training), ``--metric_for_best_model`` and
    ``--load_best_model_at_end`` work as usual.
    """

    validation_data_path: str | None = field(
        default=None,
        metadata={
            "help": "Validation data: a JSON list of LLaVA conversation records (for OK-VQA the "
            "val_subset.json of llava.data.okvqa, whose records carry 'answers' and 'question_type'). "
            "Needed by --eval_strategy epoch."
        },
    )
    validation_image_folder: str | None = field(
        default=None,
        metadata={"help": "Folder the validation records' image paths are relative to; default: --image_folder."},
    )
    eval_generate: bool | None = field(
        default=None,
        metadata={
            "help": "Answer the validation questions by greedy generation and score VQA accuracy at each "
            "evaluation. Default: on when the validation records carry 'answers' (records without them "
            "are scored against their first reply)."
        },
    )
    eval_max_samples: int | None = field(
        default=None,
        metadata={
            "help": "Questions answered by generation at each evaluation: a subset drawn once with --seed, "
            "the same every epoch. Default: all. The eval loss always covers the whole validation set."
        },
    )
    eval_max_new_tokens: int = field(
        default=16,
        metadata={"help": "Longest generated answer, in tokens (generation also stops at EOS)."},
    )
    eval_log_examples: int = field(
        default=32,
        metadata={
            "help": "Examples (image, question, prediction, answers, score) in the W&B table 'eval/examples' "
            "at each evaluation; 0 for none. Every prediction is in output_dir/eval/epoch_{k}.jsonl anyway."
        },
    )
    eval_stem: bool = field(
        default=False,
        metadata={
            "help": "Also stem predictions and answers before matching (-ing verbs lemmatised, plurals "
            "singularised), as evaluators of the stemmed OK-VQA v1.1 answers do. VQA normalisation is "
            "always applied."
        },
    )
    eval_normalization: str = field(
        default=DEFAULT_NORMALIZATION,
        metadata={
            "help": "Answer normalisation of the VQA accuracy: 'lmms-eval' (lmms-eval's EvalAI answer processor, "
            "the number LLaVA-family papers report), 'official' (the GT-Vision-Lab/VQA evaluator as downloaded "
            "today, commit a013f00, quirks included) or 'official-2015' (its 2015 beta, for old numbers). "
            "Named in eval/history.json, the log and the W&B run config. docs/EVALUATION.md.",
            "choices": list(NORMALIZATIONS),
        },
    )
    eval_multiple_choice: bool | None = field(
        default=None,
        metadata={
            "help": "Also ask each question as multiple choice (lettered options, upstream's suffix) and "
            "report choice_accuracy. Default: on when the validation records carry 'choices' and "
            "'correct_choice_idx' (A-OKVQA); False turns it off."
        },
    )


def _strategy_name(value: str | Enum | None) -> str:
    """``"epoch"`` for ``IntervalStrategy.EPOCH`` or ``"epoch"`` (raw parsed values are strings)."""
    if isinstance(value, Enum):
        return str(value.value)
    return value or "no"


def needs_generation(metric: str | None) -> bool:
    """Whether a ``metric_for_best_model`` names a metric that only generation produces."""
    if not metric:
        return False
    name = metric.removeprefix("eval_")
    return name.split("/", 1)[0] in GENERATION_METRICS


def validate_evaluation_args(model_args, data_args, training_args) -> list[str]:
    """Every problem with the evaluation flags, each with its fix (empty when they are fine).

    Same signature as the checks of ``llava.train.arguments.validate``; ``training_args``
    (a ``TrainingArguments`` with the :class:`EvalArguments` fields) may hold the raw
    parsed values (strings for strategies). Only the named files are looked at.
    """
    problems: list[str] = []
    path = training_args.validation_data_path
    image_folder = training_args.validation_image_folder
    strategy = _strategy_name(training_args.eval_strategy)
    eval_on_start = training_args.eval_on_start
    generate = training_args.eval_generate
    metric = training_args.metric_for_best_model

    if path is None:
        if strategy != "no":
            problems.append(
                f"--eval_strategy {strategy} without evaluation data: give --validation_data_path "
                "(for OK-VQA: playground/data/okvqa/val_subset.json) or use --eval_strategy no"
            )
        if strategy == "no" and eval_on_start:
            problems.append(
                "--eval_on_start True without --validation_data_path: give the validation JSON and "
                "--eval_strategy epoch, or drop --eval_on_start"
            )
    else:
        if not os.path.isfile(path):
            problems.append(f"--validation_data_path {path}: no such file (looked for {os.path.abspath(path)})")
        if strategy == "no" and not eval_on_start:
            problems.append(
                f"--validation_data_path {path} with --eval_strategy no: nothing would evaluate; "
                "add --eval_strategy epoch"
            )
    if image_folder is not None and not os.path.isdir(image_folder):
        problems.append(
            f"--validation_image_folder {image_folder}: no such folder (looked for {os.path.abspath(image_folder)})"
        )
    if needs_generation(metric):
        if generate is False:
            problems.append(
                f"--metric_for_best_model {metric} with --eval_generate False: that metric comes from "
                "generation; drop --eval_generate False or use --metric_for_best_model loss"
            )
        if training_args.greater_is_better is False:
            problems.append(
                f"--metric_for_best_model {metric} with --greater_is_better False: higher accuracy is "
                "better; drop --greater_is_better"
            )
    if training_args.load_best_model_at_end:
        save = _strategy_name(training_args.save_strategy)
        if strategy == "no":
            problems.append(
                "--load_best_model_at_end True without evaluations: add --validation_data_path and "
                "--eval_strategy epoch (with --save_strategy epoch), or drop --load_best_model_at_end"
            )
        elif save not in ("best", strategy):
            problems.append(
                f"--load_best_model_at_end True needs --save_strategy {strategy} to match --eval_strategy "
                f"{strategy} (found --save_strategy {save}); use --save_strategy {strategy}"
            )
    max_samples = training_args.eval_max_samples
    if max_samples is not None and max_samples < 1:
        problems.append(
            f"--eval_max_samples {max_samples}: use a positive count, or leave it out to answer every question"
        )
    if training_args.eval_max_new_tokens < 1:
        problems.append(f"--eval_max_new_tokens {training_args.eval_max_new_tokens}: use a positive count (16 for VQA)")
    if training_args.eval_log_examples < 0:
        problems.append(f"--eval_log_examples {training_args.eval_log_examples}: use 0 (no table) or a positive count")
    normalization = training_args.eval_normalization
    if normalization not in NORMALIZATIONS:
        problems.append(f"--eval_normalization {normalization}: use one of {', '.join(NORMALIZATIONS)}")
    if training_args.per_device_eval_batch_size < 1:
        problems.append(f"--per_device_eval_batch_size {training_args.per_device_eval_batch_size}: use a positive size")
    return problems
