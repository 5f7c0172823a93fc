"""Image and prompt helpers shared by training, evaluation and serving (upstream's ``mm_utils``).

- :func:`expand2square`, :func:`process_images`: turn PIL images into the
  pixel tensors the CLIP tower takes (``image_aspect_ratio`` "pad" or as is).
- :func:`tokenizer_image_token`: the prompt's input ids with
  ``IMAGE_TOKEN_INDEX`` where each ``<image>`` was, exactly as upstream.
- :func:`tokenizer_image_token_with_offsets`: the same ids plus each token's
  character span in the prompt, for label masking (``llava.train.data``).
- :func:`get_model_name_from_path`, :class:`KeywordsStoppingCriteria`.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

import torch
from PIL import Image
from transformers import StoppingCriteria

from llava.constants import DEFAULT_IMAGE_TOKEN, IMAGE_TOKEN_INDEX
from llava.model.mm_config import mm_setting


def load_image_from_base64(image: str) -> Image.Image:
    """A PIL image from its base64-encoded file bytes (decoded by ``llava.images.open_image``, mode kept).

    Deviation from upstream: upstream opens the picture lazily; here it is decoded at once, so
    bad bytes fail on this line with ``ImageReadError`` rather than at first use.
    """
    from llava.images import open_image

    return open_image(base64.b64decode(image), mode=None, label="(base64 image)")


def expand2square(img: Image.Image, background_color: tuple[int, ...] | int) -> Image.Image:
    """Pad ``img`` to a square of side ``max(width, height)``, centred, with ``background_color``.

    A square image is returned as is (the same object). The offset of the
    pasted image is ``(side - short) // 2``, as upstream.
    """
    width, height = img.size
    if width == height:
        return img
    side = max(width, height)
    result = Image.new(img.mode, (side, side), background_color)
    result.paste(img, ((side - width) // 2, (side - height) // 2))
    return result


def _pixel_values(image_processor, images) -> torch.Tensor:
    return image_processor.preprocess(images, return_tensors="pt")["pixel_values"]


def process_images(images: Sequence[Image.Image], image_processor, model_cfg) -> torch.Tensor | list[torch.Tensor]:
    """Pixel tensors for ``images`` as the model with config ``model_cfg`` expects them.

    ``model_cfg.image_aspect_ratio == "pad"``: each image is padded to a square
    with the processor's mean colour (``int(x * 255)`` per channel) and then
    processed; the results are stacked when their shapes agree, else returned
    as a list. Any other value (``"square"``, missing): the processor is run on
    the images as they are. ``"anyres"`` (LLaVA-NeXT) is not supported.
    """
    image_aspect_ratio = mm_setting(model_cfg, "image_aspect_ratio")
    if image_aspect_ratio == "anyres":
        raise NotImplementedError(
            "image_aspect_ratio 'anyres' (LLaVA-NeXT tiling) is not supported by this project; "
            "LLaVA-1.5 uses 'pad' (or 'square')"
        )
    if image_aspect_ratio != "pad":
        return image_processor(list(images), return_tensors="pt")["pixel_values"]
    background = tuple(int(x * 255) for x in image_processor.image_mean)
    processed = [_pixel_values(image_processor, expand2square(image, background))[0] for image in images]
    if processed and all(x.shape == processed[0].shape for x in processed):
        return torch.stack(processed, dim=0)
    return processed


# ------------------------------------------------------------------ tokenization


_METASPACE = "\u2581"  # SentencePiece's word-boundary mark "▁"


def _join_chunks(chunks: list[list[Any]], separators: list[Any], keep_bos: bool) -> list[Any]:
    """Upstream's joining rule: ``separators[k]`` between chunks k and k+1; with ``keep_bos``
    the first chunk's first item (the BOS) leads and every chunk loses its first item."""
    skip = 1 if keep_bos else 0
    joined: list[Any] = [chunks[0][0]] if keep_bos else []
    for index, chunk in enumerate(chunks):
        if index > 0:
            joined.append(separators[index - 1])
        joined.extend(chunk[skip:])
    return joined


def tokenizer_image_token(
    prompt: str,
    tokenizer,
    image_token_index: int = IMAGE_TOKEN_INDEX,
    return_tensors: str | None = None,
) -> list[int] | torch.Tensor:
    """The prompt's input ids with ``image_token_index`` in place of each ``<image>``.

    Upstream semantics: the prompt is split on ``<image>``, each chunk is
    tokenized on its own (each gets the tokenizer's BOS), and the chunks are
    joined with one ``image_token_index`` each, keeping a single leading BOS
    (the first element of every chunk is dropped when the first chunk starts
    with BOS). ``return_tensors="pt"`` gives a 1-D LongTensor.
    """
    chunks = [tokenizer(chunk).input_ids for chunk in prompt.split(DEFAULT_IMAGE_TOKEN)]
    keep_bos = bool(chunks[0]) and chunks[0][0] == tokenizer.bos_token_id
    input_ids = _join_chunks(chunks, [image_token_index] * (len(chunks) - 1), keep_bos)
    if return_tensors is None:
        return input_ids
    if return_tensors == "pt":
        return torch.tensor(input_ids, dtype=torch.long)
    raise ValueError(f"Unsupported tensor type: {return_tensors}")


def tokenizer_image_token_with_offsets(
    prompt: str,
    tokenizer,
    image_token_index: int = IMAGE_TOKEN_INDEX,
    split_images: bool = True,
) -> tuple[list[int], list[tuple[int, int]]]:
    """``tokenizer_image_token``'s ids and, per token, its ``[start, end)`` character span in ``prompt``.

    Each chunk between ``<image>`` markers is tokenized separately, as
    upstream does, so the ids are exactly :func:`tokenizer_image_token`'s;
    each chunk's offsets are shifted to prompt positions. An image token's
    span is its ``<image>`` text; the leading BOS gets the empty span
    ``(0, 0)``; a lone ``"▁"`` that is SentencePiece's dummy prefix (no
    space of the prompt behind it) gets the empty span where it stands.

    ``split_images=False`` tokenizes the prompt as one piece (what upstream
    does for a sample without an image, where ``<image>`` is plain text).

    Needs a fast tokenizer (``return_offsets_mapping``); every tokenizer in
    transformers 5 is one.
    """
    pieces = prompt.split(DEFAULT_IMAGE_TOKEN) if split_images else [prompt]
    chunk_ids: list[list[int]] = []
    chunk_spans: list[list[tuple[int, int]]] = []
    image_spans: list[tuple[int, int]] = []
    start = 0
    for index, piece in enumerate(pieces):
        if index > 0:
            image_spans.append((start, start + len(DEFAULT_IMAGE_TOKEN)))
            start += len(DEFAULT_IMAGE_TOKEN)
        try:
            encoding = tokenizer(piece, return_offsets_mapping=True)
        except NotImplementedError as error:  # a slow tokenizer (older transformers)
            raise TypeError(
                f"label masking needs a fast tokenizer (return_offsets_mapping=True); got {type(tokenizer).__name__}"
            ) from error
        ids = list(encoding["input_ids"])
        spans = [(start + s, start + e) for s, e in encoding["offset_mapping"]]
        # A lone "▁" that stands for no space of the prompt (SentencePiece's
        # dummy prefix) is reported with the next character's span; make it empty.
        for position, token in enumerate(tokenizer.convert_ids_to_tokens(ids)):
            s, e = spans[position]
            if token == _METASPACE and e > s and prompt[s:e] != " ":
                spans[position] = (s, s)
        chunk_ids.append(ids)
        chunk_spans.append(spans)
        start += len(piece)
    keep_bos = bool(chunk_ids[0]) and chunk_ids[0][0] == tokenizer.bos_token_id
    input_ids = _join_chunks(chunk_ids, [image_token_index] * len(image_spans), keep_bos)
    spans = _join_chunks(chunk_spans, image_spans, keep_bos)
    return input_ids, spans


# ------------------------------------------------------------------------ models


def get_model_name_from_path(model_path: str) -> str:
    """Upstream's model name: the last path part, or ``<parent>_checkpoint-N`` for a checkpoint folder."""
    parts = model_path.strip("/").split("/")
    if parts[-1].startswith("checkpoint-") and len(parts) > 1:
        return parts[-2] + "_" + parts[-1]
    return parts[-1]


class KeywordsStoppingCriteria(StoppingCriteria):
    """Stop each sequence once its generated text ends with one of ``keywords``.

    ``input_ids`` is the prompt batch (only tokens after it are searched). A
    sequence is done when its generated ids end with a keyword's ids, or when
    the decoded text of its last few generated tokens (as many as the longest
    keyword has) contains a keyword, as upstream checks. Returns one bool per
    sequence, as transformers 5's ``StoppingCriteria`` expect (``generate``
    stops each sequence on its own and the whole batch when all are done).
    """

    def __init__(self, keywords: Sequence[str], tokenizer, input_ids: torch.Tensor):
        self.keywords = list(keywords)
        self.tokenizer = tokenizer
        self.keyword_ids: list[torch.Tensor] = []
        for keyword in self.keywords:
            ids = tokenizer(keyword).input_ids
            if len(ids) > 1 and ids[0] == tokenizer.bos_token_id:
                ids = ids[1:]
            self.keyword_ids.append(torch.tensor(ids, dtype=torch.long))
        self.max_keyword_len = max((len(ids) for ids in self.keyword_ids), default=0)
        self.start_len = input_ids.shape[1]

    def _sequence_done(self, generated: torch.Tensor) -> bool:
        if generated.numel() == 0:
            return False
        for ids in self.keyword_ids:
            ids = ids.to(generated.device)
            if 0 < ids.numel() <= generated.numel() and torch.equal(generated[-ids.numel() :], ids):
                return True
        window = generated[-self.max_keyword_len :] if self.max_keyword_len else generated
        text = self.tokenizer.decode(window, skip_special_tokens=True)
        return any(keyword in text for keyword in self.keywords)

    def __call__(
        self, input_ids: torch.LongTensor, scores: torch.FloatTensor | None = None, **kwargs
    ) -> torch.BoolTensor:
        done = [self._sequence_done(row[self.start_len :]) for row in input_ids]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)
