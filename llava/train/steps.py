"""The steps of ``train()``, one function each, so the entry point reads like a table of contents."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from llava.train.model_setup import build_model, load_tokenizer  # noqa: F401  (re-exported steps)

logger = logging.getLogger("llava")


def configure_logging() -> None:
    """Readable logs: INFO on each node's first process, warnings only on the others.

    Runs before the arguments are parsed (their deprecation notes are logged),
    so the rank comes from the launcher's ``LOCAL_RANK``.
    """
    import transformers

    main = int(os.environ.get("LOCAL_RANK", "0")) <= 0
    level = logging.INFO if main else logging.WARNING
    logging.basicConfig(
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        level=level,
        stream=sys.stdout,
        force=True,
    )
    logging.getLogger("llava").setLevel(level)
    transformers.utils.logging.set_verbosity(logging.WARNING if main else logging.ERROR)


def init_distributed(training_args) -> None:
    """Initialise the process group now (reading ``training_args.device`` does):
    ZeRO-3 partitions weights while they load, which needs the world size.

    Also seeds every RNG with ``--seed``: adapters and new projectors are
    initialised before the Trainer exists (which seeds only then), so without
    this two runs with the same seed would start from different LoRA weights.
    Deviation from upstream: upstream's model set-up is unseeded.
    """
    from transformers import set_seed

    _ = training_args.device
    set_seed(training_args.seed)


def wandb_key_configured() -> bool:
    """True when W&B has an API key: ``WANDB_API_KEY`` or a ``~/.netrc`` entry (``wandb login``)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    import netrc

    try:
        entries = netrc.netrc(os.environ.get("NETRC")).hosts
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False
    host = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai").split("://")[-1].rstrip("/")
    return host in entries


def configure_reporting(training_args) -> None:
    """W&B without surprises: online with a key, else offline with one note; ``WANDB_MODE`` wins.

    Without a mode and a key, wandb would stop the run after a few seconds
    (``No API key configured``); here it logs offline instead (``wandb sync`` later).
    """
    if "wandb" not in (training_args.report_to or []):
        return
    import importlib.util

    if importlib.util.find_spec("wandb") is None:
        raise ImportError("--report_to wandb needs wandb: pip install -e '.[train]' (or pass --report_to none)")
    if os.environ.get("WANDB_MODE"):
        return
    if not wandb_key_configured():
        os.environ["WANDB_MODE"] = "offline"
        logger.info("W&B: no API key configured, logging offline to ./wandb (upload later with `wandb sync`).")


def conversation_template(version: str):
    """A private copy of the template ``--version`` trains with (upstream's rule: v0 keeps the default)."""
    from llava.conversation import template_for_version

    return template_for_version(version)


def num_image_tokens(model_args) -> int:
    """Positions one image takes in the sequence, from the tower's config (no weights loaded)."""
    if model_args.vision_tower is None:
        return 0
    from transformers import CLIPVisionConfig

    config = CLIPVisionConfig.from_pretrained(model_args.vision_tower)
    patches = (config.image_size // config.patch_size) ** 2
    return patches + (1 if model_args.mm_vision_select_feature == "cls_patch" else 0)


def check_training_data(tokenizer, template, model_args, data_args, training_args):
    """Pre-flight check of the training file before any model is loaded.

    Returns the entries to train on. Problems stop the run with one message
    listing all of them, unless ``--skip_flagged_samples`` asks to drop them
    (the count is logged).
    """
    from types import SimpleNamespace

    from llava.train.preflight import run_preflight

    # What train() sets on data_args once the tower is attached, known already.
    multimodal = SimpleNamespace(
        is_multimodal=model_args.vision_tower is not None or data_args.is_multimodal,
        mm_use_im_start_end=model_args.mm_use_im_start_end,
    )
    report = run_preflight(
        data_path=data_args.data_path,
        image_folder=data_args.image_folder,
        tokenizer=tokenizer,
        conversation_template=template,
        model_max_length=training_args.model_max_length,
        num_image_tokens=num_image_tokens(model_args),
        data_args_like=multimodal,
    )
    return report.entries_or_raise(
        skip_flagged=data_args.skip_flagged_samples, skip_hint="--skip_flagged_samples True"
    )


def record_base_model(model, model_args) -> None:
    """Record the base (name and weight fingerprint) in the config every output saves.

    Every rank calls this (under ZeRO-3 the embedding is gathered). A loader then
    refuses to apply the run to a different base (``llava.model.base_record``).
    """
    from llava.model.base_record import fingerprint_embeddings, record_base
    from llava.train.checkpointing import gathered_copy

    weight = gathered_copy(model.get_input_embeddings().weight)
    record_base(model.config, model_args.model_name_or_path, fingerprint_embeddings(weight))


def build_data(tokenizer, template, data_args, entries):
    from llava.train.data import make_supervised_data_module

    return make_supervised_data_module(tokenizer, data_args, conversation_template=template, entries=entries)


# [patch 0001-eval-between-epochs]
def build_evaluator(tokenizer, template, model_args, data_args, training_args):
    """The evaluator for ``--validation_data_path`` (None without it); call after build_model."""
    from llava.train.evaluation import build_evaluator as build

    return build(tokenizer, template, model_args, data_args, training_args)


def with_evaluation(data_module: dict, evaluator) -> dict:
    """The data module with the evaluator's validation set as the Trainer's eval dataset."""
    if evaluator is None:
        return data_module
    return {**data_module, "eval_dataset": evaluator.eval_dataset}


# [/patch 0001-eval-between-epochs]


def build_trainer(model, tokenizer, training_args, data_module, callbacks=None, preemption=None):
    """The Trainer, with the divergence guard and (when given) the preemption guard attached."""
    from llava.train.guards import DivergenceGuard
    from llava.train.llava_trainer import LLaVATrainer

    callbacks = list(callbacks or [])
    if preemption is not None:
        callbacks.append(preemption)
    data_module["train_dataset"].with_sample_ids = True  # a diverged step names its batch
    trainer = LLaVATrainer(
        model=model, processing_class=tokenizer, args=training_args, callbacks=callbacks, **data_module
    )
    trainer.divergence_guard = DivergenceGuard(training_args.max_nonfinite_steps, training_args.output_dir)
    return trainer


@contextmanager
def output_dir_lock(training_args) -> Iterator[None]:
    """Hold ``--output_dir`` for this run (rank 0) and clean leftovers of an interrupted save.

    Runs before the process group exists, so the rank comes from the launcher's ``RANK``.
    """
    from llava.train.guards import OutputDirLock, clean_interrupted_saves

    if int(os.environ.get("RANK", "0")) != 0:
        yield
        return
    with OutputDirLock(training_args.output_dir):
        clean_interrupted_saves(training_args.output_dir)
        yield


def start_preemption_guard():
    """SIGTERM / SIGINT from now on: finish the step, checkpoint, exit 75 (see guards.PreemptionGuard)."""
    from llava.train.guards import PreemptionGuard

    guard = PreemptionGuard()
    guard.install()
    return guard


def latest_checkpoint(output_dir: str) -> str | None:
    """The newest complete ``checkpoint-N`` in ``output_dir``, or None."""
    folder = Path(output_dir)
    if not folder.is_dir():
        return None
    candidates = []
    for path in folder.glob("checkpoint-*"):
        suffix = path.name.split("-", 1)[1]
        if path.is_dir() and suffix.isdigit() and (path / "trainer_state.json").exists():
            candidates.append((int(suffix), path))
    return str(max(candidates)[1]) if candidates else None


def fit(trainer, training_args, preemption=None) -> None:
    """Train, resuming from ``--resume_from_checkpoint`` or the newest checkpoint in ``--output_dir``.

    With a ``preemption`` guard: a signal before training exits at once (nothing to save);
    one during training ends with a checkpoint and ``Preempted`` (exit status 75).
    """
    from llava.train.guards import Preempted, any_rank

    checkpoint = training_args.resume_from_checkpoint or latest_checkpoint(training_args.output_dir)
    if preemption is not None and any_rank(preemption.requested is not None, training_args.device):
        logger.warning("Stopped (%s) before training began; nothing to save.", preemption.requested or "signal")
        raise Preempted()
    if checkpoint:
        logger.info("Resuming from %s", checkpoint)
    else:
        logger.info("Starting a fresh run in %s", training_args.output_dir)
    trainer.train(resume_from_checkpoint=checkpoint)
    if preemption is not None and preemption.preempted:
        logger.warning(
            "Preempted: checkpoint-%d is saved in %s. Run the same command again to resume from it.",
            trainer.state.global_step, training_args.output_dir,
        )
        raise Preempted()
    trainer.save_state()


def save(trainer, model, training_args) -> None:
    """The final save in upstream's layout (every rank joins; rank 0 writes)."""
    if trainer.divergence_guard is not None:
        trainer.divergence_guard.check_weights(model.named_parameters(), trainer.state.global_step, "the final model")
    model.config.use_cache = True
    os.makedirs(training_args.output_dir, exist_ok=True)
    from llava.train.checkpointing import safe_save_model_for_hf_trainer

    safe_save_model_for_hf_trainer(trainer, training_args.output_dir)
