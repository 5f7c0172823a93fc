"""Saving what a run trained, in upstream's layout (docs/UPSTREAM.md, checkpoints).

- LoRA run: ``config.json``, ``adapter_config.json``, ``adapter_model.safetensors``
  (only ``lora_`` tensors) and ``non_lora_trainables.bin`` (every other trainable
  tensor, keys prefixed ``base_model.model.``).
- Projector-only run (``--tune_mm_mlp_adapter``): ``mm_projector.bin``.
- Full fine-tune: the Trainer's own ``save_model``.

Under ZeRO-3 each parameter is gathered before it is copied. Every file is
written under a temporary name and renamed, so a crash never leaves a
half-written file under the final name.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

import torch

from llava.model.lora_loading import NON_LORA_FILE, PROJECTOR_FILE
from llava.model.peft_compat import ADAPTER_CONFIG_FILE, make_adapter_config_portable
from llava.model.tokenizer_files import save_tokenizer
from llava.utils import atomic_path, follow_umask

logger = logging.getLogger("llava")

# The file names are the loader's (one definition for writer and reader).
PROJECTOR_KEYS = ("mm_projector", "vision_resampler")
STAGING_DIR = ".staging"


def gathered_copy(param: torch.Tensor) -> torch.Tensor:
    """A detached CPU copy of ``param``, gathered first when ZeRO-3 partitioned it."""
    if hasattr(param, "ds_id"):
        from deepspeed import zero

        with zero.GatheredParameters([param]):
            return param.data.detach().cpu().clone()
    return param.detach().cpu().clone()


def lora_state(named_params: Iterable[tuple[str, torch.Tensor]], bias: str = "none") -> dict[str, torch.Tensor]:
    """The adapter tensors to save for ``--lora_bias`` none / all / lora_only."""
    named = dict(named_params)
    if bias == "none":
        keep = [name for name in named if "lora_" in name]
    elif bias == "all":
        keep = [name for name in named if "lora_" in name or "bias" in name]
    elif bias == "lora_only":
        lora_modules = {name.split("lora_")[0] for name in named if "lora_" in name}
        keep = [name for name in named if "lora_" in name]
        keep += [name for name in named if name.endswith("bias") and name[: -len("bias")] in lora_modules]
    else:
        raise ValueError(f"--lora_bias must be none, all or lora_only, got {bias!r}")
    return {name: gathered_copy(named[name]) for name in keep}


def non_lora_trainable_state(named_params: Iterable[tuple[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Every trainable tensor that is not part of an adapter (the projector, ...)."""
    return {name: gathered_copy(p) for name, p in named_params if p.requires_grad and "lora_" not in name}


def projector_state(named_params: Iterable[tuple[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    return {name: gathered_copy(p) for name, p in named_params if any(key in name for key in PROJECTOR_KEYS)}


def is_main_process(args) -> bool:
    return getattr(args, "should_save", True) and getattr(args, "local_process_index", 0) == 0


def atomic_torch_save(obj, path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary file in the same folder, then rename."""
    with atomic_path(path) as temporary:
        torch.save(obj, temporary)


def _move_files_into(source: Path, destination: Path) -> None:
    destination.mkdir(parents=True, exist_ok=True)
    for item in source.iterdir():
        os.replace(item, destination / item.name)


def _base_model(model):
    """The LLaVA model under a PEFT wrapper (for its config)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if get_base is not None else model


def save_projector(model, output_dir: str | os.PathLike, args) -> None:
    """Stage-1 output: ``mm_projector.bin`` (+ config.json) in ``output_dir``."""
    state = projector_state(model.named_parameters())
    if is_main_process(args):
        _base_model(model).config.save_pretrained(str(output_dir))
        atomic_torch_save(state, Path(output_dir) / PROJECTOR_FILE)


def save_lora_extras(model, output_dir: str | os.PathLike, args) -> None:
    """``non_lora_trainables.bin`` and ``config.json`` next to an adapter."""
    state = non_lora_trainable_state(model.named_parameters())
    if is_main_process(args):
        _base_model(model).config.save_pretrained(str(output_dir))
        atomic_torch_save(state, Path(output_dir) / NON_LORA_FILE)
        if (Path(output_dir) / ADAPTER_CONFIG_FILE).exists():
            make_adapter_config_portable(output_dir)  # the Trainer wrote today's peft fields


def save_lora_run(model, output_dir: str | os.PathLike, args) -> None:
    """The final LoRA output: adapter + ``non_lora_trainables.bin`` + ``config.json``.

    Every rank must call this (ZeRO-3 gathers are collective); rank 0 writes.
    The adapter is written to a temporary folder and its files renamed into place.
    """
    adapter = lora_state(model.named_parameters(), getattr(args, "lora_bias", "none"))
    extras = non_lora_trainable_state(model.named_parameters())
    if not is_main_process(args):
        return
    output = Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".saving-", dir=output))
    try:
        _base_model(model).config.save_pretrained(str(staging))
        model.save_pretrained(str(staging), state_dict=adapter)
        make_adapter_config_portable(staging)  # loads with upstream's peft 0.10.0 too
        torch.save(extras, staging / NON_LORA_FILE)
        follow_umask(staging)  # safetensors writes 0600
        _move_files_into(staging, output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    logger.info("Saved LoRA adapter (%d tensors) and %d non-LoRA tensors to %s", len(adapter), len(extras), output)


def point_best_checkpoint(state, run_dir: str | os.PathLike) -> None:
    """Point ``state.best_model_checkpoint`` at the published ``checkpoint-N`` (every rank).

    While saving, the Trainer recorded the best checkpoint under the staging folder.
    """
    if getattr(state, "best_global_step", None):
        state.best_model_checkpoint = str(Path(run_dir) / f"checkpoint-{state.best_global_step}")


def publish_checkpoint(staged: str | os.PathLike, final: str | os.PathLike, state) -> None:
    """Rename a fully written checkpoint into place and rewrite its ``trainer_state.json`` (rank 0)."""
    staged, final = Path(staged), Path(final)
    if final.exists():
        shutil.rmtree(final)
    follow_umask(staged)  # safetensors and mkstemp write 0600; the run's files follow the umask
    os.replace(staged, final)
    if (final / "trainer_state.json").exists():
        state.save_to_json(str(final / "trainer_state.json"))
    try:
        staged.parent.rmdir()
    except OSError:
        pass  # another checkpoint is being staged


def load_non_lora_trainables(model, checkpoint_dir: str | os.PathLike) -> int:
    """Copy a checkpoint's ``non_lora_trainables.bin`` into the (PEFT-wrapped) training model.

    Keys are matched as saved (``base_model.model.…``); under ZeRO-3 each
    parameter is gathered, written on every rank, and re-partitioned.
    """
    path = Path(checkpoint_dir) / NON_LORA_FILE
    state = torch.load(path, map_location="cpu", weights_only=True)
    params = dict(model.named_parameters())
    unknown = sorted(set(state) - set(params))
    if unknown:
        raise ValueError(f"{path} does not fit the model being trained: unknown keys {unknown[:5]}")
    for name, value in state.items():
        param = params[name]
        if hasattr(param, "ds_id"):
            from deepspeed import zero

            with zero.GatheredParameters([param], modifier_rank=0):
                param.data.copy_(value.to(param.dtype))
        else:
            with torch.no_grad():
                param.copy_(value.to(device=param.device, dtype=param.dtype))
    logger.info("Restored %d non-LoRA tensors (projector, ...) from %s", len(state), path)
    return len(state)


def safe_save_model_for_hf_trainer(trainer, output_dir: str) -> None:
    """Upstream's front: save the final model the way its training mode calls for."""
    args = trainer.args
    model = trainer.model
    if getattr(args, "tune_mm_mlp_adapter", False):
        folder = Path(output_dir)
        if folder.name.startswith("checkpoint-"):
            # Upstream keeps per-checkpoint copies as mm_projector/checkpoint-N.bin.
            state = projector_state(model.named_parameters())
            if is_main_process(args):
                atomic_torch_save(state, folder.parent / "mm_projector" / f"{folder.name}.bin")
        else:
            save_projector(model, folder, args)
            save_upstream_tokenizer(trainer, folder)
        return
    if getattr(args, "lora_enable", False):
        save_lora_run(model, output_dir, args)
        return
    trainer.save_model(output_dir)
    save_upstream_tokenizer(trainer, output_dir)


def save_upstream_tokenizer(trainer, output_dir: str | os.PathLike) -> None:
    """The tokenizer files upstream's slow tokenizer needs (``tokenizer.model``, ...) beside a full or
    projector-only output (rank 0). A LoRA run loads its base's tokenizer, as upstream's does."""
    tokenizer = trainer.processing_class
    if tokenizer is not None and is_main_process(trainer.args):
        save_tokenizer(tokenizer, output_dir)


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
