"""Rebuild a fine-tuned model from a base checkpoint plus what a run saved.

Two kinds of run output (upstream's layout; docs/UPSTREAM.md, checkpoints):
- LoRA: ``config.json``, ``adapter_config.json`` + ``adapter_model.*`` and
  ``non_lora_trainables.bin`` (projector and other trained non-LoRA tensors,
  keys prefixed ``base_model.model.``);
- projector only (stage-1 pretraining): ``config.json`` + ``mm_projector.bin``.

Every mismatch (missing file, a base whose shapes do not fit, a key that does
not exist in the model) is an error naming it: never a silently random projector.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

logger = logging.getLogger("llava")

NON_LORA_FILE = "non_lora_trainables.bin"
PROJECTOR_FILE = "mm_projector.bin"


def _require(path: Path, what: str) -> Path:
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: {what}")
    return path


def _check_base_fits(run_config, base_path: str) -> None:
    from transformers import AutoConfig

    base = AutoConfig.from_pretrained(base_path)
    problems = []
    for key in ("hidden_size", "num_hidden_layers", "intermediate_size"):
        if getattr(base, key, None) != getattr(run_config, key, None):
            problems.append(f"{key}: base {getattr(base, key, None)} vs run {getattr(run_config, key, None)}")
    if problems:
        raise ValueError(f"--model-base {base_path} does not fit this run: " + "; ".join(problems))


def check_safetensors(path: Path) -> None:
    """A damaged (truncated, garbled) safetensors file is a ValueError naming it, before a library reads it."""
    if not path.exists():
        return
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            handle.keys()
    except Exception as error:
        raise ValueError(f"{path}: not a readable safetensors file ({error}); copy the run again") from None


def strip_non_lora_prefix(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map saved keys (``base_model.model.model.mm_projector.0.weight``) to model keys."""
    renamed = {}
    for key, value in state.items():
        if key.startswith("base_model.model."):
            key = key[len("base_model.model.") :]
        elif key.startswith("base_model."):
            key = key[len("base_model.") :]
        renamed[key] = value
    return renamed


def load_non_lora_weights(model, run_dir: str | Path) -> list[str]:
    """Apply ``non_lora_trainables.bin`` to ``model`` (strictly) and return the keys applied."""
    path = _require(Path(run_dir) / NON_LORA_FILE, "a LoRA run saves its projector there")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a planted pickle or a damaged file: named, never executed
        reason = str(error).strip().splitlines()[-1][:160] if str(error).strip() else type(error).__name__
        raise ValueError(f"{path}: not loadable as weights only ({reason})") from None
    state = strip_non_lora_prefix(loaded)
    own = model.state_dict()
    unknown = [key for key in state if key not in own]
    bad_shape = [key for key in state if key in own and own[key].shape != state[key].shape]
    if unknown or bad_shape:
        raise ValueError(
            f"{path} does not fit the model: unknown keys {unknown[:5]}, "
            f"shape mismatches {[(k, tuple(state[k].shape), tuple(own[k].shape)) for k in bad_shape[:5]]}"
        )
    model.load_state_dict(state, strict=False)
    return sorted(state)


def run_config(run_dir: Path):
    """The run's LLaVA config, without the training-time quantization settings.

    A QLoRA run saves ``quantization_config`` in its config; loading applies
    whatever the caller asks for (``load_4bit``/``load_8bit``) instead.
    """
    from llava.model import LlavaConfig

    config = LlavaConfig.from_pretrained(str(run_dir))
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    return config


def load_lora_checkpoint(run_dir, model_base: str, load_kwargs: dict, allow_base_mismatch: bool = False):
    """Base model with the run's config, its non-LoRA weights, and the merged adapter.

    The base must be the one the run recorded (``llava.model.base_record``) unless ``allow_base_mismatch``.
    """
    from peft import PeftModel

    from llava.model import LlavaLlamaForCausalLM
    from llava.model.base_record import check_base

    run = Path(run_dir)
    _require(run / "config.json", "a LoRA run saves the LLaVA config next to the adapter")
    _require(run / "adapter_config.json", "this is not a LoRA run output")
    config = run_config(run)
    _check_base_fits(config, model_base)
    model = LlavaLlamaForCausalLM.from_pretrained(model_base, config=config, **load_kwargs)
    check_base(run, config, model_base, model, allow_base_mismatch)
    applied = load_non_lora_weights(model, run)
    logger.info("Applied %d non-LoRA tensors from %s", len(applied), run / NON_LORA_FILE)
    check_safetensors(run / "adapter_model.safetensors")
    model = PeftModel.from_pretrained(model, str(run))
    return model.merge_and_unload()


def load_projector_checkpoint(run_dir, model_base: str, load_kwargs: dict, allow_base_mismatch: bool = False):
    """Base model with the run's config and its ``mm_projector.bin`` (base checked as for LoRA)."""
    from llava.model import LlavaLlamaForCausalLM
    from llava.model.base_record import check_base

    run = Path(run_dir)
    config = run_config(run)
    model = LlavaLlamaForCausalLM.from_pretrained(model_base, config=config, **load_kwargs)
    check_base(run, config, model_base, model, allow_base_mismatch)
    model.get_model().load_projector_weights(str(_require(run / PROJECTOR_FILE, "a projector-only run saves it")))
    return model
