"""Batched greedy answering: prompts in the training template, images, left padding, KV cache.

One implementation (and the one prompt builder, :func:`open_prompt`) for training's
image turns, offline answering (``llava.eval.model_vqa``, ``run_llava``, ``serve``) and
evaluation between epochs, so all produce the same text for the same model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from llava.constants import (
    DEFAULT_IM_END_TOKEN,
    DEFAULT_IM_START_TOKEN,
    DEFAULT_IMAGE_TOKEN,
    IMAGE_TOKEN_INDEX,
)

KV_CACHES = ("dynamic", "static")
# Prompt lengths are rounded up to a multiple of this with a static cache (few shapes to compile).
STATIC_PROMPT_MULTIPLE = 64


@dataclass(frozen=True)
class GenerationSettings:
    """Decoding settings: greedy by default (``temperature`` 0), ``max_new_tokens`` per answer.

    ``kv_cache``: ``dynamic`` (grows each step), or ``static`` (preallocated; on a GPU
    transformers then compiles the decode step; prompts are padded to a multiple of
    :data:`STATIC_PROMPT_MULTIPLE` so the compiled step is reused). Greedy answers are the same.
    """

    max_new_tokens: int = 16
    temperature: float = 0.0
    top_p: float | None = None
    num_beams: int = 1
    kv_cache: str = "dynamic"

    def __post_init__(self):
        if self.kv_cache not in KV_CACHES:
            raise ValueError(f"kv_cache must be one of {', '.join(KV_CACHES)}, got {self.kv_cache!r}")

    def generate_kwargs(self, tokenizer) -> dict:
        sampling = self.temperature > 0
        kwargs = {
            "max_new_tokens": self.max_new_tokens,
            "do_sample": sampling,
            "num_beams": self.num_beams,
            "use_cache": True,
            "pad_token_id": tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
        }
        if self.kv_cache == "static":
            kwargs["cache_implementation"] = "static"
        if sampling:
            kwargs["temperature"] = self.temperature
            if self.top_p is not None:
                kwargs["top_p"] = self.top_p
        return kwargs


def image_turn(value: str, template, mm_use_im_start_end: bool = False) -> str:
    """A turn's text as training shows it (upstream's ``preprocess_multimodal`` rule).

    In a turn holding ``<image>``, every ``<image>`` is removed and one is put back in
    front followed by a newline (stripped); an mmtag template wraps it as
    ``<Image><image></Image>``. With ``mm_use_im_start_end`` every ``<image>`` becomes
    ``<im_start><image><im_end>``.
    """
    if DEFAULT_IMAGE_TOKEN in value:
        value = (DEFAULT_IMAGE_TOKEN + "\n" + value.replace(DEFAULT_IMAGE_TOKEN, "").strip()).strip()
        if "mmtag" in template.version:
            value = value.replace(DEFAULT_IMAGE_TOKEN, "<Image>" + DEFAULT_IMAGE_TOKEN + "</Image>")
    if mm_use_im_start_end:
        value = value.replace(DEFAULT_IMAGE_TOKEN, DEFAULT_IM_START_TOKEN + DEFAULT_IMAGE_TOKEN + DEFAULT_IM_END_TOKEN)
    return value


def open_prompt(human_value: str, template) -> str:
    """The one prompt builder: ``human_value`` as the human turn, then the assistant turn left open.

    Training renders the same template (``llava.train.data.conversation_prompt``), so
    its prompt for a record starts with exactly this text.
    """
    conversation = template.copy()
    conversation.messages = []
    conversation.offset = 0
    conversation.append_message(conversation.roles[0], human_value)
    conversation.append_message(conversation.roles[1], None)
    return conversation.get_prompt()


def build_prompt(question: str, template, with_image: bool = True, mm_use_im_start_end: bool = False) -> str:
    """The training prompt for ``question`` with the assistant turn left open."""
    if with_image:
        image = (
            DEFAULT_IM_START_TOKEN + DEFAULT_IMAGE_TOKEN + DEFAULT_IM_END_TOKEN
            if mm_use_im_start_end
            else DEFAULT_IMAGE_TOKEN
        )
        question = image + "\n" + question
    return open_prompt(question, template)


def _padded(
    sequences: Sequence[list[int]], pad_id: int, side: str, multiple: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(s) for s in sequences)
    width += -width % multiple
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, sequence in enumerate(sequences):
        span = slice(width - len(sequence), width) if side == "left" else slice(0, len(sequence))
        ids[row, span] = torch.tensor(sequence, dtype=torch.long)
        mask[row, span] = 1
    return ids, mask


@torch.no_grad()
def answer_batch(
    model,
    tokenizer,
    prompts: Sequence[str],
    images: torch.Tensor | None,
    settings: GenerationSettings = GenerationSettings(),
) -> list[str]:
    """Answers for a batch of prompts (each with its image), decoded and stripped.

    With images the model re-pads the spliced prompts on the left itself;
    text-only prompts are left-padded here. Greedy decoding stops at EOS or
    after ``settings.max_new_tokens``, with the KV cache on.

    Runs under ``torch.no_grad`` rather than ``torch.inference_mode``: between
    epochs the same parameters train again, and under DeepSpeed ZeRO-3 the
    weights gathered here would otherwise be inference tensors that autograd
    refuses later.
    """
    from llava.mm_utils import tokenizer_image_token

    sequences = [tokenizer_image_token(prompt, tokenizer, IMAGE_TOKEN_INDEX) for prompt in prompts]
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    kwargs = settings.generate_kwargs(tokenizer)
    multiple = STATIC_PROMPT_MULTIPLE if settings.kv_cache == "static" else 1
    ids, mask = _padded(
        sequences, pad_id, "right" if images is not None else "left", 1 if images is not None else multiple
    )
    device = model.device
    if images is not None:
        vision_dtype = model.get_vision_tower().dtype
        images = images.to(device=device, dtype=vision_dtype)
        if multiple > 1:
            kwargs["pad_to_multiple_of"] = multiple  # the model pads the spliced prompts
    output = model.generate(ids.to(device), images=images, attention_mask=mask.to(device), **kwargs)
    if images is None:  # plain generate returns prompt + answer
        output = output[:, ids.shape[1] :]
    return [text.strip() for text in tokenizer.batch_decode(output, skip_special_tokens=True)]
