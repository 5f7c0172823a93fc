"""The one seam for Liger-Kernel: fused Triton kernels from a maintained library, on the Llama LM.

Liger-Kernel (``pip install -e '.[gpu]'``) replaces the language model's RMSNorm, rotary
embedding and SwiGLU MLP with fused kernels, and computes the loss with its fused linear +
cross-entropy, so the logits of a training batch (16 x 636 x 32,000 for the recipe) are never
materialised. The kernels compute the same functions (rounding aside; the gpu tests compare
losses with the unfused path). They need CUDA and Triton.

``--use_liger`` (training): unset means on where it can run (CUDA and the package present) and
off elsewhere without a word; ``True`` asks for it and logs one line when it cannot run;
``False`` turns it off. Nothing else in the package imports ``liger_kernel``.
"""

from __future__ import annotations

import importlib.util
import logging

import torch

logger = logging.getLogger("llava")

PACKAGE = "liger_kernel"
# The attribute a model carries once its loss is the fused linear + cross-entropy.
FUSED_LOSS = "_llava_liger_fused_loss"


def liger_available() -> tuple[bool, str]:
    """Whether Liger-Kernel can run here, and if not, why."""
    if not torch.cuda.is_available():
        return False, "no CUDA device"
    if importlib.util.find_spec(PACKAGE) is None:
        return False, "liger-kernel is not installed (pip install -e '.[gpu]')"
    return True, ""


def want_liger(requested: bool | None) -> bool:
    """Whether to apply Liger: ``requested`` None = where available; True = asked (one line if it cannot)."""
    if requested is False:
        return False
    available, reason = liger_available()
    if not available and requested:
        logger.warning("Liger-Kernel unavailable (%s): training without it.", reason)
    return available


def apply_liger(model) -> None:
    """Fused RMSNorm, RoPE and SwiGLU in ``model``'s Llama layers, and the fused loss.

    Called on the loaded model before LoRA adapters are attached: the patched MLP calls its
    ``gate_proj``/``up_proj``/``down_proj`` attributes, which LoRA then wraps. The rotary
    patch is module-wide (``transformers.models.llama.modeling_llama``), as Liger does it.
    """
    from liger_kernel.transformers import apply_liger_kernel_to_llama

    # The loss stays ours (forward splices the images first); Liger's forward would replace it.
    apply_liger_kernel_to_llama(rope=True, rms_norm=True, swiglu=True, fused_linear_cross_entropy=False, model=model)
    setattr(model, FUSED_LOSS, True)
    logger.info("Liger-Kernel: fused RMSNorm, RoPE, SwiGLU and linear + cross-entropy in the language model")


def output_weight(lm_head) -> torch.Tensor:
    """``lm_head``'s weight as a matrix: a 4-bit (bitsandbytes) head is dequantized for the fused loss."""
    weight = lm_head.weight
    state = getattr(weight, "quant_state", None)
    if state is None:
        return weight
    import bitsandbytes.functional as bnb_functional

    return bnb_functional.dequantize_4bit(weight.data, state).to(state.dtype)


def fused_causal_lm_loss(
    hidden_states: torch.Tensor, lm_head, labels: torch.Tensor, num_items_in_batch=None, loss_class=None
):
    """The next-token loss from the last hidden states, without materialising the logits.

    The same loss as transformers' ``ForCausalLMLoss``: labels shifted by one, ``-100``
    ignored, mean over the predicted tokens (or sum / ``num_items_in_batch`` under
    gradient accumulation). ``loss_class``: Liger's ``LigerFusedLinearCrossEntropyLoss``
    unless given (anything called as ``(ignore_index=, reduction=)(weight, input, target, bias)``).
    """
    if loss_class is None:
        from liger_kernel.transformers.fused_linear_cross_entropy import LigerFusedLinearCrossEntropyLoss

        loss_class = LigerFusedLinearCrossEntropyLoss
    hidden = hidden_states[:, :-1, :].reshape(-1, hidden_states.shape[-1])
    targets = labels[:, 1:].reshape(-1).to(hidden.device)
    reduction = "sum" if num_items_in_batch is not None else "mean"
    loss_fn = loss_class(ignore_index=-100, reduction=reduction)
    bias = getattr(lm_head, "bias", None)
    loss = loss_fn(output_weight(lm_head).to(hidden.dtype), hidden.contiguous(), targets, bias)
    if num_items_in_batch is not None:
        loss = loss / num_items_in_batch
    return loss
