"""Fine-tune LLaVA: upstream's ``llava/train/train.py`` front.

Run (any upstream recipe works unchanged):

    deepspeed llava/train/train_mem.py --deepspeed scripts/zero2.json \
        --model_name_or_path liuhaotian/llava-v1.5-7b --version v1 \
        --lora_enable True --lora_r 128 --lora_alpha 256 --mm_projector_lr 2e-5 --bits 4 \
        --data_path playground/data/okvqa/train.json --image_folder playground/data/coco \
        --vision_tower openai/clip-vit-large-patch14-336 --mm_projector_type mlp2x_gelu \
        --mm_vision_select_layer -2 --image_aspect_ratio pad --bf16 True \
        --output_dir checkpoints/llava-v1.5-7b-okvqa-qlora ...

    python llava/train/train.py ...      # one process, no DeepSpeed needed

``train()`` is the table of contents; each step lives in its own module:
arguments (``arguments``), data checks (``preflight``), tokenizer and model
(``model_setup``), data (``data``), the Trainer (``llava_trainer``) and the
final save (``checkpointing``).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: python llava/train/train.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from llava.train.arguments import DataArguments, ModelArguments, TrainingArguments, parse_args  # noqa: E402
from llava.train.checkpointing import safe_save_model_for_hf_trainer  # noqa: E402
from llava.train.data import (  # noqa: E402
    DataCollatorForSupervisedDataset,
    LazySupervisedDataset,
    make_supervised_data_module,
    preprocess,
    preprocess_multimodal,
)
from llava.train.fronts import (  # noqa: E402
    get_mm_adapter_state_maybe_zero_3,
    get_peft_state_maybe_zero_3,
    get_peft_state_non_lora_maybe_zero_3,
    maybe_zero_3,
    preprocess_llama_2,
    preprocess_mpt,
    preprocess_plain,
    preprocess_v1,
    rank0_print,
    smart_tokenizer_and_embedding_resize,
)
from llava.train.model_setup import find_all_linear_names  # noqa: E402

logger = logging.getLogger("llava")

__all__ = [
    "DataArguments",
    "DataCollatorForSupervisedDataset",
    "LazySupervisedDataset",
    "ModelArguments",
    "TrainingArguments",
    "find_all_linear_names",
    "get_mm_adapter_state_maybe_zero_3",
    "get_peft_state_maybe_zero_3",
    "get_peft_state_non_lora_maybe_zero_3",
    "make_supervised_data_module",
    "maybe_zero_3",
    "preprocess",
    "preprocess_llama_2",
    "preprocess_mpt",
    "preprocess_multimodal",
    "preprocess_plain",
    "preprocess_v1",
    "rank0_print",
    "safe_save_model_for_hf_trainer",
    "smart_tokenizer_and_embedding_resize",
    "train",
]


def train(attn_implementation: str | None = None, argv: list[str] | None = None, callbacks: list | None = None):
    """Parse the command line, build model and data, fit, save; returns the Trainer.

    ``argv`` defaults to ``sys.argv[1:]``; ``callbacks`` are extra ``TrainerCallback``s
    (benchmarks and tests use them to observe a real run).
    """
    from llava.train import steps

    steps.configure_logging()
    model_args, data_args, training_args = parse_args(argv)
    with steps.output_dir_lock(training_args):
        return _train(model_args, data_args, training_args, attn_implementation, callbacks)


def _train(model_args, data_args, training_args, attn_implementation, callbacks):
    """The run itself, while this run holds ``--output_dir``."""
    from llava.train import steps

    preemption = steps.start_preemption_guard()
    try:
        return _fit_and_save(model_args, data_args, training_args, attn_implementation, callbacks, preemption)
    finally:
        preemption.uninstall()


def _fit_and_save(model_args, data_args, training_args, attn_implementation, callbacks, preemption):
    from llava.train import steps

    steps.init_distributed(training_args)
    steps.configure_reporting(training_args)
    tokenizer = steps.load_tokenizer(model_args, training_args)
    template = steps.conversation_template(model_args.version)
    entries = steps.check_training_data(tokenizer, template, model_args, data_args, training_args)
    model = steps.build_model(model_args, data_args, training_args, tokenizer, attn_implementation)
    steps.record_base_model(model, model_args)
    data_module = steps.build_data(tokenizer, template, data_args, entries)
    # [patch 0001-eval-between-epochs]
    evaluator = steps.build_evaluator(tokenizer, template, model_args, data_args, training_args)
    data_module = steps.with_evaluation(data_module, evaluator)
    # [/patch 0001-eval-between-epochs]
    trainer = steps.build_trainer(model, tokenizer, training_args, data_module, callbacks, preemption)
    # [patch 0001-eval-between-epochs]
    trainer.llava_evaluator = evaluator
    # [/patch 0001-eval-between-epochs]
    steps.fit(trainer, training_args, preemption)
    steps.save(trainer, model, training_args)
    return trainer


if __name__ == "__main__":
    from llava.train.guards import run_main

    run_main(train)
