"""``load_pretrained_model``: upstream's loader front, for inference and evaluation.

Returns ``(tokenizer, model, image_processor, context_len)`` as upstream does.
Which kind of checkpoint ``model_path`` holds is decided from the files on
disk first and from upstream's name rule second:

- ``adapter_config.json`` present (or ``lora`` in the name, with a base):
  a LoRA run; the base is loaded with the run's config, the run's
  ``non_lora_trainables.bin`` (projector, ...) is applied, and the adapter
  is merged.
- ``mm_projector.bin`` present with a base (or ``llava`` in the name with a
  base): a projector-only (stage-1) run on top of the base.
- otherwise: a full LLaVA checkpoint.

Deviation from upstream: upstream decides from name substrings alone and
silently starts from a random projector when the name misleads it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

from llava.constants import DEFAULT_IM_END_TOKEN, DEFAULT_IM_START_TOKEN, DEFAULT_IMAGE_PATCH_TOKEN
from llava.model.hub import local_folder
from llava.model.llava_arch import QUANTIZATION_SKIP_MODULES
from llava.model.mm_config import mm_setting

logger = logging.getLogger("llava")


def resolve_device(device: str) -> str:
    """``device`` if usable here; ``cuda`` falls back to ``cpu`` (with a log line) without CUDA."""
    if device.startswith("cuda") and not torch.cuda.is_available():
        logger.warning("CUDA is not available: loading the model on the CPU.")
        return "cpu"
    return device


def default_dtype(device: str) -> torch.dtype:
    """float16 on CUDA (upstream's choice), float32 on the CPU (half is slow or unsupported there)."""
    return torch.float16 if device.startswith("cuda") else torch.float32


def checkpoint_kind(model_path: str | os.PathLike, model_base: str | None, model_name: str) -> str:
    """``"lora"``, ``"projector"`` or ``"full"`` for the checkpoint at ``model_path``."""
    path = Path(model_path)
    name = model_name.lower()
    if (path / "adapter_config.json").exists():
        return "lora"
    if (path / "mm_projector.bin").exists() and model_base is not None:
        return "projector"
    if model_base is not None and "lora" in name:
        return "lora"
    if model_base is not None and "llava" in name:
        return "projector"
    return "full"


def _quantization_kwargs(load_8bit: bool, load_4bit: bool, dtype: torch.dtype) -> dict:
    if not (load_8bit or load_4bit):
        return {}
    try:
        from transformers import BitsAndBytesConfig
    except ImportError as error:  # pragma: no cover - part of transformers
        raise ImportError("4/8-bit loading needs bitsandbytes: pip install -e '.[train]'") from error
    if load_8bit:
        config = BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=QUANTIZATION_SKIP_MODULES)
    else:
        config = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_compute_dtype=dtype,
            bnb_4bit_use_double_quant=True,
            bnb_4bit_quant_type="nf4",
            llm_int8_skip_modules=QUANTIZATION_SKIP_MODULES,
        )
    return {"quantization_config": config}


def load_pretrained_model(
    model_path,
    model_base,
    model_name,
    load_8bit: bool = False,
    load_4bit: bool = False,
    device_map="auto",
    device: str = "cuda",
    use_flash_attn: bool = False,
    **kwargs,
):
    """Load a LLaVA checkpoint for inference: ``(tokenizer, model, image_processor, context_len)``.

    ``model_path`` and ``model_base`` are local folders or Hugging Face Hub ids.
    ``kwargs`` may hold ``dtype`` (or upstream's ``torch_dtype``) to override the
    default (float16 on CUDA, float32 on the CPU) and any other ``from_pretrained``
    argument, passed on as upstream does (``attn_implementation`` wins over
    ``use_flash_attn``). ``use_kernels`` defaults to False (``llava.model.hub_kernels``).
    Remote code never runs unless ``trust_remote_code=True`` is passed.
    A LoRA / projector-only run loads only on the base it recorded, unless ``kwargs`` holds
    ``allow_base_mismatch=True`` (see ``llava.model.base_record``; a keyword, as upstream's
    signature ends in ``**kwargs``).
    """
    from transformers import AutoTokenizer

    from llava.model import LlavaLlamaForCausalLM
    from llava.model.attention import FLASH, resolve_attn_implementation
    from llava.model.hub_kernels import with_kernel_choice

    allow_base_mismatch = bool(kwargs.pop("allow_base_mismatch", False))
    device = resolve_device(device)
    dtype = kwargs.pop("dtype", None) or kwargs.pop("torch_dtype", None) or default_dtype(device)
    load_kwargs = with_kernel_choice(kwargs)  # no Hub kernels unless use_kernels=True is passed
    load_kwargs["dtype"] = dtype
    load_kwargs.update(_quantization_kwargs(load_8bit, load_4bit, dtype))
    if device_map == "auto" and device != "cuda":
        device_map = {"": device}
    if device_map is not None and (device.startswith("cuda") or load_8bit or load_4bit):
        load_kwargs["device_map"] = device_map
    if "attn_implementation" not in load_kwargs:  # lmms-eval passes its own, as upstream forwards it
        load_kwargs["attn_implementation"] = resolve_attn_implementation(FLASH if use_flash_attn else None)

    # A Hub id: the small files that decide the kind (and a run's adapter and projector) are fetched.
    model_dir = local_folder(model_path)
    kind = checkpoint_kind(model_dir, model_base, model_name)
    if kind == "full":
        tokenizer = AutoTokenizer.from_pretrained(model_path, use_fast=False)
        model = LlavaLlamaForCausalLM.from_pretrained(model_path, **load_kwargs)
    else:
        from llava.model.lora_loading import load_lora_checkpoint, load_projector_checkpoint

        if model_base is None:
            raise ValueError(
                f"{model_path} is a {kind} checkpoint (it holds "
                f"{'an adapter' if kind == 'lora' else 'only the projector'}): pass --model-base, "
                "the model it was trained from (e.g. liuhaotian/llava-v1.5-7b)."
            )
        tokenizer = AutoTokenizer.from_pretrained(model_base, use_fast=False)
        loader = load_lora_checkpoint if kind == "lora" else load_projector_checkpoint
        model = loader(model_dir, model_base, load_kwargs, allow_base_mismatch=allow_base_mismatch)

    image_processor = None
    if mm_setting(model.config, "mm_vision_tower"):
        _add_image_tokens(model, tokenizer)
        tower = model.get_vision_tower()
        tower.load_model(device_map=None)
        tower.to(device=device, dtype=dtype)
        image_processor = tower.image_processor
    if "device_map" not in load_kwargs:
        model.to(device)
    model.eval()
    context_len = mm_setting(model.config, "max_sequence_length")
    return tokenizer, model, image_processor, context_len


def _add_image_tokens(model, tokenizer) -> None:
    new_tokens = []
    if mm_setting(model.config, "mm_use_im_patch_token"):
        new_tokens.append(DEFAULT_IMAGE_PATCH_TOKEN)
    if mm_setting(model.config, "mm_use_im_start_end"):
        new_tokens += [DEFAULT_IM_START_TOKEN, DEFAULT_IM_END_TOKEN]
    if new_tokens and tokenizer.add_tokens(new_tokens, special_tokens=True):
        model.resize_token_embeddings(len(tokenizer))
