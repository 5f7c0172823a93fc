"""Upstream ``llava/train/train.py``'s helper functions, with upstream's parameters, over our implementation.

Projects built on LLaVA import these from ``llava.train.train`` (which
re-exports them): the per-template ``preprocess_*`` functions, the ZeRO-3-safe
state collectors used to save adapters and projectors, the embedding resize
for new special tokens and ``rank0_print``. Each is a thin front: the work is
done by ``llava.train.data`` (labels from character spans, one tokenization)
and ``llava.train.checkpointing`` (gathering under ZeRO-3).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

import torch

from llava.conversation import Conversation, SeparatorStyle, conv_templates
from llava.train.checkpointing import gathered_copy, lora_state
from llava.train.data import preprocess, resolve_template


def rank0_print(*args) -> None:
    """``print`` on the first process only (all processes when not distributed).

    Deviation from upstream: the rank comes from ``torch.distributed`` or the
    launcher's ``LOCAL_RANK`` instead of a module global set by ``train()``.
    """
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        rank = torch.distributed.get_rank()
    else:
        rank = int(os.environ.get("LOCAL_RANK", "0"))
    if rank == 0:
        print(*args)


def maybe_zero_3(param: torch.Tensor, ignore_status: bool = False, name: str | None = None) -> torch.Tensor:
    """A detached CPU copy of ``param``, gathered first when ZeRO-3 partitioned it.

    ``ignore_status`` and ``name`` are accepted for upstream's callers; upstream
    only used them to log parameters that were not yet available.
    """
    return gathered_copy(param)


def get_peft_state_maybe_zero_3(named_params: Iterable[tuple[str, torch.Tensor]], bias: str) -> dict[str, torch.Tensor]:
    """The LoRA tensors to save for ``--lora_bias`` (``none``, ``all`` or ``lora_only``), on the CPU."""
    return lora_state(named_params, bias)


def get_peft_state_non_lora_maybe_zero_3(
    named_params: Iterable[tuple[str, torch.Tensor]], require_grad_only: bool = True
) -> dict[str, torch.Tensor]:
    """Every tensor outside the adapters (only trainable ones by default): ``non_lora_trainables.bin``."""
    return {
        name: gathered_copy(param)
        for name, param in named_params
        if "lora_" not in name and (param.requires_grad or not require_grad_only)
    }


def get_mm_adapter_state_maybe_zero_3(
    named_params: Iterable[tuple[str, torch.Tensor]], keys_to_match: Sequence[str]
) -> dict[str, torch.Tensor]:
    """The tensors whose names contain one of ``keys_to_match`` (``mm_projector.bin``)."""
    return {name: gathered_copy(param) for name, param in named_params if any(key in name for key in keys_to_match)}


def smart_tokenizer_and_embedding_resize(special_tokens_dict: dict, tokenizer, model) -> None:
    """Add ``special_tokens_dict`` to the tokenizer, resize the embeddings, and start new rows at the mean row."""
    added = tokenizer.add_special_tokens(special_tokens_dict)
    model.resize_token_embeddings(len(tokenizer))
    if added > 0:
        with torch.no_grad():
            for matrix in (model.get_input_embeddings().weight, model.get_output_embeddings().weight):
                matrix[-added:] = matrix[:-added].mean(dim=0, keepdim=True)


def _template_of_style(style: SeparatorStyle, fallback: str) -> Conversation:
    """The module's ``default_conversation`` when it has ``style`` (upstream's train() sets it), else ``fallback``."""
    default = resolve_template(None)  # llava.conversation.default_conversation, read now
    return default if default.sep_style == style else conv_templates[fallback]


def preprocess_v1(sources, tokenizer, has_image: bool = False) -> dict[str, list[torch.Tensor]]:
    """Ids and labels in a TWO-style template (``vicuna_v1`` unless ``default_conversation`` is TWO)."""
    template = _template_of_style(SeparatorStyle.TWO, "vicuna_v1")
    return preprocess(sources, tokenizer, has_image, conversation_template=template)


def preprocess_llama_2(sources, tokenizer, has_image: bool = False) -> dict[str, list[torch.Tensor]]:
    """Ids and labels in a LLAMA_2-style template (``llava_llama_2`` unless ``default_conversation`` is one)."""
    template = _template_of_style(SeparatorStyle.LLAMA_2, "llava_llama_2")
    return preprocess(sources, tokenizer, has_image, conversation_template=template)


def preprocess_mpt(sources, tokenizer, has_image: bool = False) -> dict[str, list[torch.Tensor]]:
    """Ids and labels in the MPT-style template (``mpt`` unless ``default_conversation`` is MPT-style)."""
    template = _template_of_style(SeparatorStyle.MPT, "mpt")
    return preprocess(sources, tokenizer, has_image, conversation_template=template)


def preprocess_plain(sources, tokenizer) -> dict[str, list[torch.Tensor]]:
    """Pretraining samples: ``<image>`` + caption + ``\\n``, only the caption and separator learned."""
    return preprocess(sources, tokenizer, has_image=True, conversation_template=conv_templates["plain"])
