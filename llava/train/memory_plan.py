"""``--gradient_checkpointing auto``: checkpoint activations only when they would not fit in memory.

Checkpointing saves memory by running every decoder layer's forward twice, which costs about a
third of a LoRA step (6N instead of 4N FLOPs a token). :func:`plan_checkpointing` estimates the
activations one micro-batch keeps for the backward pass, from the model's shapes, the batch, the
longest training sample and the precision, and compares them with the memory free on the device
once the model is loaded, less the optimizer state still to come, with a margin. It logs its
choice in one line. The estimate errs high (it counts every tensor a LoRA layer keeps, LoRA
dropout's copies and masks, and fp32 norms), so "off" is chosen only with room to spare.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

import torch

logger = logging.getLogger("llava")

AUTO = "auto"
# Share of the free memory the activations may take; the rest absorbs allocator fragmentation,
# temporary buffers (4-bit dequantisation, attention workspaces) and the estimate's error.
MARGIN = 0.85
# Optimizer state per trainable parameter: fp32 master copy and two Adam moments, plus the gradient.
OPTIMIZER_BYTES_PER_PARAMETER = 16
GIB = 2**30


@dataclass(frozen=True)
class CheckpointingPlan:
    """The decision and the figures behind it (bytes)."""

    checkpointing: bool
    batch_size: int
    tokens: int
    activations: int
    checkpointed_activations: int
    free: int
    reserved: int
    device: str

    @property
    def budget(self) -> int:
        return max(int((self.free - self.reserved) * MARGIN), 0)

    def line(self) -> str:
        """The one log line: the choice, and why."""
        figures = (
            f"activations about {_size(self.activations)} at {self.batch_size} x {self.tokens} tokens "
            f"({_size(self.checkpointed_activations)} with checkpointing); "
            f"{int(MARGIN * 100)}% of the {_size(self.free - self.reserved)} free on {self.device} "
            f"after the optimizer state is {_size(self.budget)}"
        )
        choice = "on" if self.checkpointing else "off"
        return f"--gradient_checkpointing auto: {choice} ({figures})"


def _size(count: int) -> str:
    return f"{count / GIB:.1f} GiB" if count >= GIB / 10 else f"{count / 2**20:.1f} MiB"


def _text_config(config):
    return getattr(config, "text_config", None) or config


def layer_values_per_token(config, lora: bool, lora_dropout: bool, lora_r: int = 0) -> tuple[int, int]:
    """(values, one-byte mask values) one decoder layer keeps per token for the backward pass.

    Counted without checkpointing, as a Llama layer with SDPA: the attention block keeps its
    norm's input and output, q/k/v, q/k after RoPE, the attention output and the residual; the
    MLP keeps its norm's input and output, gate, up, the activation and the product. A LoRA
    adapter on each of the seven Linears keeps its ``A`` output, and with dropout a dropped copy
    of its input and the mask.
    """
    text = _text_config(config)
    hidden = text.hidden_size
    intermediate = text.intermediate_size
    heads = text.num_attention_heads
    kv_heads = getattr(text, "num_key_value_heads", None) or heads
    head_dim = getattr(text, "head_dim", None) or hidden // heads
    kv = kv_heads * head_dim
    attention = 6 * hidden + 3 * kv
    mlp = 2 * hidden + 4 * intermediate
    values, masks = attention + mlp, 0
    if lora:
        values += 7 * lora_r
        if lora_dropout:
            dropped = 6 * hidden + intermediate  # q, k, v, o, gate, up take hidden; down takes intermediate
            values += dropped
            masks += dropped
    return values, masks


def lora_parameters(config, lora_r: int) -> int:
    """Parameters of rank-``lora_r`` adapters on the seven Linears of every decoder layer."""
    text = _text_config(config)
    hidden, intermediate = text.hidden_size, text.intermediate_size
    heads = text.num_attention_heads
    kv = (getattr(text, "num_key_value_heads", None) or heads) * (getattr(text, "head_dim", None) or hidden // heads)
    per_layer = 2 * hidden + 2 * (hidden + kv) + 2 * hidden + 2 * (hidden + intermediate) + (intermediate + hidden)
    return text.num_hidden_layers * lora_r * per_layer


def activation_bytes(
    config,
    batch_size: int,
    tokens: int,
    bytes_per_value: int,
    checkpointing: bool,
    lora: bool = True,
    lora_dropout: bool = True,
    lora_r: int = 0,
) -> int:
    """Bytes of activations one micro-batch keeps (see :func:`layer_values_per_token`).

    With checkpointing: each layer's input, plus one layer recomputed at a time. Both add the
    logits (the head's output, its fp32 copy for the loss, and their gradient) and the fp32
    norms' extra two bytes a value.
    """
    text = _text_config(config)
    layers = text.num_hidden_layers
    positions = batch_size * tokens
    values, masks = layer_values_per_token(config, lora, lora_dropout, lora_r)
    norm_upcast = 4 * text.hidden_size * 2 if bytes_per_value < 4 else 0  # two fp32 norms a layer
    per_layer = positions * (values * bytes_per_value + masks + norm_upcast)
    logits = positions * text.vocab_size * (bytes_per_value + 4 + 4)
    if checkpointing:
        return layers * positions * text.hidden_size * bytes_per_value + per_layer + logits
    return layers * per_layer + logits


def free_memory(device: torch.device) -> int:
    """Bytes free on ``device``: the CUDA allocator's view, or the host's available memory."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import os

    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def _smallest_across_ranks(value: int, device: torch.device) -> int:
    """Every rank must decide alike: the tightest rank's free memory decides for all."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return value
    backend_device = device if torch.distributed.get_backend() == "nccl" else torch.device("cpu")
    tensor = torch.tensor([value], dtype=torch.int64, device=backend_device)
    torch.distributed.all_reduce(tensor, op=torch.distributed.ReduceOp.MIN)
    return int(tensor.item())


def plan_checkpointing(
    model,
    batch_size: int,
    tokens: int,
    bytes_per_value: int,
    device: torch.device,
    lora_r: int = 0,
    lora_dropout: float = 0.0,
    free: int | None = None,
) -> CheckpointingPlan:
    """Decide whether to checkpoint ``model`` (loaded, adapters not yet attached).

    ``tokens``: the longest training sample (images spliced in); ``free``: measured on
    ``device`` unless given.
    """
    config = model.config
    lora = lora_r > 0
    trainable_parameters = lora_parameters(config, lora_r) if lora else sum(p.numel() for p in model.parameters())
    free = _smallest_across_ranks(free_memory(device) if free is None else free, device)
    # Weights still on the host (DeepSpeed moves them later) count against the device too.
    pending = 0
    if device.type == "cuda":
        pending = sum(p.numel() * p.element_size() for p in model.parameters() if p.device.type != "cuda")
    reserved = trainable_parameters * OPTIMIZER_BYTES_PER_PARAMETER + pending
    kwargs = dict(lora=lora, lora_dropout=lora_dropout > 0, lora_r=lora_r)
    full = activation_bytes(config, batch_size, tokens, bytes_per_value, checkpointing=False, **kwargs)
    saved = activation_bytes(config, batch_size, tokens, bytes_per_value, checkpointing=True, **kwargs)
    plan = CheckpointingPlan(
        checkpointing=True,
        batch_size=batch_size,
        tokens=tokens,
        activations=full,
        checkpointed_activations=saved,
        free=free,
        reserved=reserved,
        device=str(device),
    )
    return dataclasses.replace(plan, checkpointing=full > plan.budget)
