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

``train()`` is the recipe: parse, :func:`setup` (tokenizer, checked data, model,
Trainer), :func:`fit`, :func:`save`; each step's work lives in its module
(``arguments``, ``preflight``, ``model_setup``, ``data``, ``llava_trainer``,
``checkpointing``, ``guards``). docs/TRAINING.md is the manual.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llava.train.llava_trainer import LLaVATrainer

if __package__ in (None, ""):  # run as a script: python llava/train/train.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from transformers import set_seed  # noqa: E402

from llava.conversation import template_for_version  # noqa: E402
from llava.model.image_tokens import num_image_tokens  # noqa: E402
from llava.train.arguments import DataArguments, ModelArguments, TrainingArguments, parse_args  # noqa: E402
from llava.train.checkpointing import latest_checkpoint, safe_save_model_for_hf_trainer  # noqa: E402
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
from llava.train.guards import (  # noqa: E402
    DivergenceGuard,
    Preempted,
    PreemptionGuard,
    any_rank,
    output_dir_lock,
)
from llava.train.model_setup import (  # noqa: E402
    build_model,
    find_all_linear_names,
    load_tokenizer,
    record_base_model,
)
from llava.train.preflight import run_preflight  # noqa: E402
from llava.train.reporting import configure_logging, configure_reporting  # noqa: E402

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
    """Parse the command line, set up, fit, save; returns the Trainer.

    ``argv`` defaults to ``sys.argv[1:]``; ``callbacks`` are extra ``TrainerCallback``s
    (benchmarks and tests use them to observe a real run).
    """
    configure_logging()
    model_args, data_args, training_args = parse_args(argv)
    with output_dir_lock(training_args.output_dir):
        preemption = PreemptionGuard()  # SIGTERM / SIGINT from now on: finish the step, checkpoint, exit 75
        preemption.install()
        try:
            trainer = setup(model_args, data_args, training_args, attn_implementation, [*(callbacks or []), preemption])
            fit(trainer, training_args, preemption)
            save(trainer, training_args.output_dir)
        finally:
            preemption.uninstall()
    return trainer


def setup(
    model_args: ModelArguments,
    data_args: DataArguments,
    training_args: TrainingArguments,
    attn_implementation: str | None = None,
    callbacks: Sequence = (),
) -> LLaVATrainer:
    """Tokenizer, checked data, model and the Trainer that holds them."""
    # Imported here: transformers.trainer prints a W&B note on import, and `import llava.train.train`
    # (upstream's names) stays light.
    from llava.train.llava_trainer import LLaVATrainer

    # Reading .device starts the process group now (ZeRO-3 partitions weights while they load).
    _ = training_args.device
    # Deviation from upstream: upstream's model set-up is unseeded; adapters and new projectors
    # are initialised before the Trainer (which seeds only then) exists.
    set_seed(training_args.seed)
    configure_reporting(training_args)
    tokenizer = load_tokenizer(model_args, training_args)
    template = template_for_version(model_args.version)
    image_tokens = num_image_tokens(model_args.vision_tower, model_args.mm_vision_select_feature)
    # The training file is checked before any model loads; problems stop the run with all of them
    # listed, unless --skip_flagged_samples drops them (the count is logged).
    report = run_preflight(
        data_args.data_path,
        data_args.image_folder,
        tokenizer,
        template,
        training_args.model_max_length,
        image_tokens,
        mm_use_im_start_end=model_args.mm_use_im_start_end,
        is_multimodal=model_args.vision_tower is not None or data_args.is_multimodal,
    )
    entries = report.entries_or_raise(
        skip_flagged=data_args.skip_flagged_samples, skip_hint="--skip_flagged_samples True"
    )
    model = build_model(model_args, data_args, training_args, tokenizer, attn_implementation, report.longest)
    record_base_model(model, model_args.model_name_or_path)  # a loader refuses a different base
    record_run(model, model_args, data_args, training_args)  # data, image folders, template: eval/run.json
    data_module = make_supervised_data_module(tokenizer, data_args, conversation_template=template, entries=entries)
    data_module["train_dataset"].with_sample_ids = True  # a diverged step names its batch
    # [patch 0001-eval-between-epochs]
    from llava.train.evaluation import build_evaluator

    evaluator = build_evaluator(tokenizer, template, data_args, training_args, image_tokens)
    # [/patch 0001-eval-between-epochs]
    return LLaVATrainer(
        model=model,
        processing_class=tokenizer,
        args=training_args,
        callbacks=list(callbacks),
        divergence_guard=DivergenceGuard(training_args.max_nonfinite_steps, training_args.output_dir),
        # [patch 0001-eval-between-epochs]
        evaluator=evaluator,
        # [/patch 0001-eval-between-epochs]
        **data_module,
    )


def record_run(model, model_args, data_args, training_args) -> None:
    """What this run trains and evaluates on, and with which template (``llava.run_record``):
    on the config every output saves, and in ``output_dir/eval/run.json`` (rank 0)."""
    from llava.run_record import CONFIG_KEY, build_record, write_run_file

    record = build_record(
        model_args.version,
        data_args.data_path,
        data_args.image_folder,
        training_args.validation_data_path,
        training_args.validation_image_folder,
    )
    setattr(model.config, CONFIG_KEY, record)
    if training_args.process_index == 0:
        write_run_file(training_args.output_dir, record)


def fit(trainer, training_args, preemption=None) -> None:
    """Train, resuming from ``--resume_from_checkpoint`` or the newest checkpoint in ``--output_dir``.

    With a ``preemption`` guard: a signal before training exits at once (nothing to save);
    one during training ends with a checkpoint and ``Preempted`` (exit status 75).
    """
    checkpoint = training_args.resume_from_checkpoint or latest_checkpoint(training_args.output_dir)
    if preemption is not None and any_rank(preemption.requested is not None, training_args.device):
        logger.warning("Stopped (%s) before training began; nothing to save.", preemption.requested or "signal")
        raise Preempted()
    if checkpoint:
        from llava.train.checkpoint_safety import check_checkpoint

        check_checkpoint(checkpoint, trust_pickles=training_args.trust_checkpoint_pickles)  # before anything reads it
        logger.info("Resuming from %s", checkpoint)
    else:
        logger.info("Starting a fresh run in %s", training_args.output_dir)
    trainer.train(resume_from_checkpoint=checkpoint)
    if preemption is not None and preemption.preempted:
        logger.warning(
            "Preempted: checkpoint-%d is saved in %s. Run the same command again to resume from it.",
            trainer.state.global_step,
            training_args.output_dir,
        )
        raise Preempted()
    trainer.save_state()


def save(trainer: LLaVATrainer, output_dir: str) -> None:
    """The final save in upstream's layout (every rank joins; rank 0 writes), never of non-finite weights."""
    model = trainer.model
    if trainer.divergence_guard is not None:
        trainer.divergence_guard.check_weights(model.named_parameters(), trainer.state.global_step, "the final model")
    model.config.use_cache = True
    os.makedirs(output_dir, exist_ok=True)
    safe_save_model_for_hf_trainer(trainer, output_dir)


if __name__ == "__main__":
    from llava.train.guards import run_main

    run_main(train)
