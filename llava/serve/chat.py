"""The one chat engine behind ``llava.serve.cli`` and ``llava.serve.gradio_web_server``.

:func:`load_chat_model` loads a checkpoint through ``load_pretrained_model``
(a LoRA run with its base, a merged model, a full checkpoint, a Hub id);
:class:`ChatSession` holds one conversation about one picture and streams each
reply as it is generated::

    chat_model = load_chat_model("checkpoints/llava-v1.5-7b-okvqa-qlora", "liuhaotian/llava-v1.5-7b")
    session = ChatSession(chat_model, resolve_conv_mode(chat_model.model_name, None), open_image("cat.jpg"))
    for text in session.stream("What is in the picture?", GenerationSettings(max_new_tokens=64)):
        print(text)          # the reply so far, growing token by token

Prompts are built with ``llava.conversation`` templates exactly as in
training (``<image>\\n`` in front of the first question, the picture sent once
per conversation); sampling settings are ``llava.eval.generation``'s. Problems
a user can fix (an unreadable picture, a prompt longer than the model reads)
raise :class:`ChatInputError` with a message meant for the user.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from PIL import Image

from llava import images
from llava.constants import (
    DEFAULT_IM_END_TOKEN,
    DEFAULT_IM_START_TOKEN,
    DEFAULT_IMAGE_TOKEN,
    IMAGE_TOKEN_INDEX,
)
from llava.conversation import SeparatorStyle, conv_mode_for_model, conv_templates
from llava.eval.generation import GenerationSettings
from llava.model.mm_config import mm_setting

logger = logging.getLogger("llava")

# Upstream's chat defaults: sampling at temperature 0.2, up to 512 new tokens.
CHAT_SETTINGS = GenerationSettings(max_new_tokens=512, temperature=0.2)


class ChatInputError(ValueError):
    """A problem with what the user gave (picture, prompt); the message is shown to them as is."""


@dataclass
class ChatModel:
    """A loaded checkpoint: what ``load_pretrained_model`` returns, plus the model's name."""

    tokenizer: Any
    model: Any
    image_processor: Any
    context_len: int
    model_name: str
    # Serialises generation: one model, possibly many browser sessions.
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __deepcopy__(self, memo) -> ChatModel:
        # One loaded model serves every conversation: Gradio copies session state, never the model.
        return self

    @property
    def image_token_count(self) -> int:
        """How many positions one picture takes in the model's input (576 for CLIP-L/336)."""
        return int(self.model.get_vision_tower().num_image_tokens)

    def fit_picture(self, image: Image.Image) -> Image.Image:
        """``image`` reduced to what the tower reads (aspect kept), so a session never holds more.

        With ``pad`` the picture becomes a square of its longer side, scaled to the tower's input
        size: the longer side needs no more pixels than that. Otherwise the shorter side is scaled
        to it and the centre cropped: the shorter side needs no more.
        """
        target = _tower_input_size(self.image_processor)
        if target is None:
            return image
        pad = mm_setting(self.model.config, "image_aspect_ratio") == "pad"
        side = max(image.size) if pad else min(image.size)
        if side <= target:
            return image
        scale = target / side
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        return image.resize(size, Image.Resampling.BICUBIC)

    @property
    def mm_use_im_start_end(self) -> bool:
        return bool(mm_setting(self.model.config, "mm_use_im_start_end"))


def _tower_input_size(processor) -> int | None:
    """The side of the square the image processor hands the tower (336 for CLIP-L/336)."""

    def field(value, key: str):  # a dict, or transformers 5's SizeDict
        return value.get(key) if isinstance(value, dict) else getattr(value, key, None)

    for attribute, key in (("crop_size", "height"), ("size", "shortest_edge")):
        side = field(getattr(processor, attribute, None), key)
        if side:
            return int(side)
    return None


def load_chat_model(
    model_path: str,
    model_base: str | None = None,
    load_8bit: bool = False,
    load_4bit: bool = False,
    device: str = "cuda",
    allow_base_mismatch: bool = False,
    use_kernels: bool = False,
) -> ChatModel:
    """Load ``model_path`` (a folder or a Hub id; a LoRA run needs ``model_base``) for chatting."""
    from llava.mm_utils import get_model_name_from_path
    from llava.model.builder import load_pretrained_model

    if load_8bit and load_4bit:
        raise ValueError("--load-8bit and --load-4bit exclude each other: pass one of them")
    path = os.path.expanduser(model_path)
    model_name = get_model_name_from_path(path)
    tokenizer, model, image_processor, context_len = load_pretrained_model(
        path,
        model_base,
        model_name,
        load_8bit=load_8bit,
        load_4bit=load_4bit,
        device=device,
        allow_base_mismatch=allow_base_mismatch,
        use_kernels=use_kernels,
    )
    if image_processor is None:
        raise ValueError(f"{model_path} has no vision tower (config.mm_vision_tower): not a LLaVA checkpoint")
    # The model reads at most the shortest of: upstream's context_len, the tokenizer's and the positions'.
    limit = int(context_len)
    for value in (getattr(tokenizer, "model_max_length", None), getattr(model.config, "max_position_embeddings", None)):
        if isinstance(value, int) and 0 < value < limit:
            limit = value
    return ChatModel(tokenizer, model, image_processor, limit, model_name)


def chat_model_from_args(args) -> tuple[ChatModel, str]:
    """The model and its template from ``add_model_arguments``' flags and ``--conv-mode`` (CLI and page).

    The template: ``--conv-mode``, else the one the run recorded, else upstream's name rule.
    """
    from llava.run_record import choose_conv_mode

    chat_model = load_chat_model(
        args.model_path,
        args.model_base,
        args.load_8bit,
        args.load_4bit,
        args.device,
        args.allow_base_mismatch,
        args.use_kernels,
    )
    conv_mode = resolve_conv_mode(chat_model.model_name, choose_conv_mode(args.model_path, args.conv_mode, None))
    return chat_model, conv_mode


def infer_conv_mode(model_name: str) -> str:
    """Upstream's template choice from the model's name (``llava-v1.5-7b`` -> ``llava_v1``)."""
    return conv_mode_for_model(model_name, mix_is_mistral=True)


def resolve_conv_mode(model_name: str, requested: str | None) -> str:
    """``requested`` when given (logging when it differs from the inferred one), else the inferred one."""
    inferred = infer_conv_mode(model_name)
    if requested is None:
        return inferred
    if requested not in conv_templates:
        raise ValueError(f"--conv-mode {requested}: unknown template; one of {sorted(conv_templates)}")
    if requested != inferred:
        logger.info("The name %s suggests --conv-mode %s; using %s as asked.", model_name, inferred, requested)
    return requested


DEFAULT_MAX_MEGAPIXELS = 50.0


def open_image(source: str | os.PathLike, max_megapixels: float | None = DEFAULT_MAX_MEGAPIXELS) -> Image.Image:
    """The picture at ``source`` in RGB; :class:`ChatInputError` naming the file when it cannot be read.

    A picture of more than ``max_megapixels`` is refused from its header, before decoding (a
    140 KB PNG can hold 144 million pixels: 430 MB once decoded).
    """
    name = os.path.basename(os.fspath(source))
    if max_megapixels is not None:
        try:
            with Image.open(source) as header:
                width, height = header.size
        except (OSError, Image.DecompressionBombError, ValueError):
            width = height = 0  # unreadable: the full read below says why
        if width * height > max_megapixels * 1e6:
            raise ChatInputError(
                f"{name} is {width}×{height} ({width * height / 1e6:.0f} megapixels): over the "
                f"{max_megapixels:g} megapixel limit (--max-megapixels); send a smaller picture."
            )
    try:
        return images.open_image(source)
    except images.ImageReadError as error:
        if error.missing:
            raise ChatInputError(f"No such picture: {os.fspath(source)}") from error
        raise ChatInputError(
            f"Cannot read {os.path.basename(os.fspath(source))} as a picture ({error.reason.split(':')[0]}): "
            "upload a JPEG, PNG, WebP, GIF or BMP file."
        ) from error


def conversation_prompt(
    turns: list[tuple[str, str | None]], conv_mode: str, with_image: bool, mm_use_im_start_end: bool = False
) -> str:
    """The prompt for ``turns`` (``(question, reply)``; the last reply ``None`` stays open).

    The picture placeholder goes in front of the first question, as in training
    and in ``llava.eval.generation.build_prompt`` (equal for one turn).
    """
    conversation = conv_templates[conv_mode].copy()
    conversation.messages = []
    for index, (question, reply) in enumerate(turns):
        if index == 0 and with_image:
            image = DEFAULT_IMAGE_TOKEN
            if mm_use_im_start_end:
                image = DEFAULT_IM_START_TOKEN + DEFAULT_IMAGE_TOKEN + DEFAULT_IM_END_TOKEN
            question = image + "\n" + question
        conversation.append_message(conversation.roles[0], question)
        conversation.append_message(conversation.roles[1], reply)
    return conversation.get_prompt()


def stop_string(conv_mode: str) -> str | None:
    """The text that ends a reply in ``conv_mode`` beyond EOS (``###`` for v0), as upstream stops."""
    template = conv_templates[conv_mode]
    stop = template.sep if template.sep_style != SeparatorStyle.TWO else template.sep2
    return stop or None


class _StopWhenSet:
    """A stopping criterion that ends generation once its event is set (stop string seen, or cancel)."""

    def __init__(self, event: threading.Event):
        self.event = event

    def __call__(self, input_ids: torch.LongTensor, scores=None, **kwargs) -> torch.BoolTensor:
        return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device)


@dataclass
class ChatSession:
    """One conversation about one picture (or none) in one template."""

    chat_model: ChatModel
    conv_mode: str
    image: Image.Image | None = None
    turns: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.conv_mode not in conv_templates:
            raise ValueError(f"unknown conversation template {self.conv_mode!r}; one of {sorted(conv_templates)}")
        self._pixels = None

    def prompt(self, question: str) -> str:
        """The whole prompt for asking ``question`` next."""
        return conversation_prompt(
            [*self.turns, (question, None)], self.conv_mode, self.image is not None, self.chat_model.mm_use_im_start_end
        )

    def _input_ids(self, question: str, max_new_tokens: int) -> tuple[torch.Tensor, int]:
        """The prompt's ids and how many new tokens fit the context (``ChatInputError`` when none)."""
        from llava.mm_utils import tokenizer_image_token

        ids = tokenizer_image_token(self.prompt(question), self.chat_model.tokenizer, IMAGE_TOKEN_INDEX)
        length = len(ids)
        picture = 0
        if self.image is not None:
            picture = self.chat_model.image_token_count
            length += picture - 1  # the placeholder becomes the picture's features
        room = self.chat_model.context_len - length
        if room < 1:
            history = f", with {len(self.turns)} earlier exchange(s)" if self.turns else ""
            raise ChatInputError(
                f"The prompt is too long: {length} tokens (the picture takes {picture}{history}), "
                f"but the model reads at most {self.chat_model.context_len}. "
                "Shorten the question or clear the conversation."
            )
        return torch.tensor([ids], dtype=torch.long), min(max_new_tokens, room)

    def _pixel_values(self) -> torch.Tensor | None:
        if self.image is None:
            return None
        if self._pixels is None:
            from llava.mm_utils import process_images

            model = self.chat_model.model
            pixels = process_images([self.image], self.chat_model.image_processor, model.config)
            self._pixels = pixels.to(device=model.device, dtype=model.get_vision_tower().dtype)
        return self._pixels

    def stream(self, question: str, settings: GenerationSettings = CHAT_SETTINGS) -> Iterator[str]:
        """Ask ``question``; yields the reply so far after each new piece of text.

        The exchange joins the history once the reply is complete. Stopping the
        iteration early (a closed browser tab) stops generation too.
        """
        from transformers import StoppingCriteriaList, TextIteratorStreamer

        question = question.strip()
        if not question:
            raise ChatInputError("Type a question first.")
        input_ids, max_new_tokens = self._input_ids(question, settings.max_new_tokens)
        chat_model = self.chat_model
        model = chat_model.model
        stop = stop_string(self.conv_mode)
        streamer = TextIteratorStreamer(chat_model.tokenizer, skip_prompt=True, skip_special_tokens=True)
        halt = threading.Event()
        # Streaming shows one sequence: no beams.
        kwargs = replace(settings, max_new_tokens=max_new_tokens, num_beams=1).generate_kwargs(chat_model.tokenizer)
        failure: list[Exception] = []

        def generate() -> None:
            try:
                model.generate(
                    input_ids.to(model.device),
                    images=self._pixel_values(),
                    attention_mask=torch.ones_like(input_ids).to(model.device),
                    streamer=streamer,
                    stopping_criteria=StoppingCriteriaList([_StopWhenSet(halt)]),
                    **kwargs,
                )
            except Exception as error:  # handed to the consumer thread, which re-raises it
                failure.append(error)
                streamer.end()

        reply = ""
        with chat_model.lock:
            worker = threading.Thread(target=generate, name="llava-generate", daemon=True)
            worker.start()
            try:
                for piece in streamer:
                    reply += piece
                    if stop and stop in reply:
                        reply = reply[: reply.index(stop)]
                        halt.set()
                        yield reply.strip()
                        break
                    yield _without_partial_stop(reply, stop).strip()
            finally:
                halt.set()
                worker.join()
        if failure:
            raise failure[0]
        reply = reply.strip()
        self.turns.append((question, reply))
        yield reply

    def reset(self, image: Image.Image | None = None) -> None:
        """Start a new conversation (about ``image``)."""
        self.turns = []
        self.image = image
        self._pixels = None


def _without_partial_stop(text: str, stop: str | None) -> str:
    """``text`` minus a tail that may be the start of ``stop`` (not shown until it is known)."""
    if stop:
        for size in range(min(len(stop) - 1, len(text)), 0, -1):
            if text.endswith(stop[:size]):
                return text[:-size]
    return text
