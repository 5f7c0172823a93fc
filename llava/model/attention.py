"""The one seam for the attention kernel: FlashAttention-2 when it can run, else SDPA.

flash-attn is an optional extra (``pip install -e .[flash]``); it needs CUDA
and a build against the installed torch. Everything else in the package asks
this module which implementation to use and never imports flash_attn itself.
"""

from __future__ import annotations

import importlib.util
import logging

logger = logging.getLogger("llava")

FLASH = "flash_attention_2"
DEFAULT = "sdpa"


def flash_attention_available() -> tuple[bool, str]:
    """Whether FlashAttention-2 can run here, and if not, why."""
    import torch

    if not torch.cuda.is_available():
        return False, "no CUDA device"
    if importlib.util.find_spec("flash_attn") is None:
        return False, "flash-attn is not installed (pip install -e '.[flash]' --no-build-isolation)"
    major, _ = torch.cuda.get_device_capability()
    if major < 8:
        return False, f"GPU compute capability {major}.x < 8.0 (FlashAttention-2 needs Ampere or newer)"
    return True, ""


def resolve_attn_implementation(requested: str | None) -> str:
    """The implementation to pass to ``from_pretrained``: ``requested`` if it can run.

    ``flash_attention_2`` falls back to ``sdpa`` with one log line saying why;
    ``None`` means the default (``sdpa``).
    """
    if requested is None:
        return DEFAULT
    if requested == FLASH:
        available, reason = flash_attention_available()
        if not available:
            # Without a GPU there is nothing to fix (train_mem.py asks for it, as upstream): a note, not a warning.
            log = logger.info if reason == "no CUDA device" else logger.warning
            log("FlashAttention-2 unavailable (%s): using PyTorch SDPA attention instead.", reason)
            return DEFAULT
    return requested
