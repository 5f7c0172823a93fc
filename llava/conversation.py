"""Conversation templates: upstream LLaVA's prompt formats, rendered byte for byte.

A :class:`Conversation` holds a system prompt, two role names and a list of
``[role, message]`` pairs, and renders them with one of five separator styles
(:class:`SeparatorStyle`). ``conv_templates`` maps upstream's template keys
(``--version`` / ``--conv-mode``) to the templates; ``default_conversation``
is the template upstream's code falls back on.

Beyond upstream, :meth:`Conversation.get_prompt_and_targets` renders the same
prompt together with the character spans the model learns to produce (the
assistant replies and their end markers). Training labels are derived from
those spans inside the tokenization of the whole prompt
(``llava.train.data``), instead of upstream's per-round token arithmetic.

Example::

    conv = conv_templates["v1"].copy()
    conv.append_message(conv.roles[0], "<image>\\nWhat is it?")
    conv.append_message(conv.roles[1], None)
    prompt = conv.get_prompt()   # "... USER: <image>\\nWhat is it? ASSISTANT:"
"""

from __future__ import annotations

import dataclasses
from enum import Enum, auto
from typing import Any

from llava.constants import DEFAULT_IMAGE_TOKEN


class SeparatorStyle(Enum):
    """How messages are joined into a prompt (see :meth:`Conversation.get_prompt`)."""

    SINGLE = auto()
    TWO = auto()
    MPT = auto()
    PLAIN = auto()
    LLAMA_2 = auto()


# One rendered piece of a prompt and whether the model learns to produce it.
_Segment = tuple[str, bool]


@dataclasses.dataclass
class Conversation:
    """A conversation history and the template that renders it.

    ``messages`` holds ``[role, message]`` pairs that alternate user /
    assistant (the separators alternate by position, as upstream's renderers
    assume). A message is a string, ``None`` (an open turn: the prompt ends
    with the role tag so a model continues it), or the demo's
    ``(text, PIL image, image_process_mode)`` tuple.
    """

    system: str
    roles: tuple[str, str] | list[str]
    messages: list[list[Any]] | tuple
    offset: int
    sep_style: SeparatorStyle = SeparatorStyle.SINGLE
    sep: str = "###"
    sep2: str | None = None
    version: str = "Unknown"

    skip_next: bool = False

    # ----------------------------------------------------------------- rendering

    def get_prompt(self) -> str:
        """The prompt text, exactly as upstream renders it."""
        return self.get_prompt_and_targets()[0]

    def get_prompt_and_targets(self) -> tuple[str, list[tuple[int, int]]]:
        """The prompt and the ``[start, end)`` character spans of what the model learns.

        The prompt is :meth:`get_prompt`'s (both come from one renderer). A
        span covers everything the model must generate for one assistant
        reply, that is the rendered reply minus what the prompt shows for an
        open turn of the assistant:

        - TWO (v1): from just after ``"ASSISTANT:"`` (the separating space
          included, where upstream's masking also starts) through ``"</s>"``.
        - SINGLE (v0): from just after ``"Assistant:"`` through the ``"###"``
          that ends the reply.
        - LLAMA_2: ``" " + reply + " </s>"`` (everything after ``"[/INST]"``).
        - MPT: the reply and its ``sep``.
        - PLAIN: the reply and the separator that follows it.

        Empty (``None``) replies have no span, and neither have the template's
        own example messages (those before ``offset``, as in ``v0``).
        """
        segments = self._render_segments()
        prompt = "".join(text for text, _ in segments)
        spans: list[tuple[int, int]] = []
        position = 0
        for text, learned in segments:
            if learned and text:
                if spans and spans[-1][1] == position:
                    spans[-1] = (spans[-1][0], position + len(text))
                else:
                    spans.append((position, position + len(text)))
            position += len(text)
        if self.sep_style == SeparatorStyle.LLAMA_2:
            # Upstream strips the leading ``sep`` with str.lstrip, which removes
            # any leading run of the characters of ``sep`` (for "<s>": '<', 's',
            # '>'), not the string. Same call here, spans shifted accordingly.
            stripped = prompt.lstrip(self.sep)
            cut = len(prompt) - len(stripped)
            prompt = stripped
            spans = [(max(start - cut, 0), end - cut) for start, end in spans if end > cut]
        return prompt, spans

    def _messages_for_rendering(self) -> list[tuple[str, str, bool, bool]]:
        """``(role, text, present, learnable)`` per message, as upstream renders them.

        ``present`` is the truth value upstream tests (a demo tuple counts even
        when its text is empty); ``text`` is the message string (a tuple's first
        item, ``""`` for ``None``). ``learnable`` is False for the template's own
        example messages (those before ``offset``) and for the image exchange
        the mmtag templates insert.
        """
        messages = [(role, message, index >= self.offset) for index, (role, message) in enumerate(self.messages)]
        if messages and isinstance(messages[0][1], tuple):
            # Upstream's demo: the first user message carries the image; its text
            # loses any "<image>" and gets one back in front (or, for the mmtag
            # templates, a fixed image exchange is prepended).
            first_role, first_message, first_learnable = messages[0]
            first_text = first_message[0].replace(DEFAULT_IMAGE_TOKEN, "").strip()
            if "mmtag" in self.version:
                messages[0] = (first_role, first_text, first_learnable)
                messages.insert(0, (self.roles[0], "<Image><image></Image>", False))
                messages.insert(1, (self.roles[1], "Received.", False))
            else:
                messages[0] = (first_role, DEFAULT_IMAGE_TOKEN + "\n" + first_text, first_learnable)
        rendered = []
        for role, message, learnable in messages:
            text = message[0] if isinstance(message, tuple) else (message or "")
            rendered.append((role, text, bool(message), learnable))
        return rendered

    def _render_segments(self) -> list[_Segment]:
        """The prompt as ``(text, learned)`` pieces; joined, they are upstream's prompt."""
        messages = self._messages_for_rendering()
        style = self.sep_style
        # Upstream concatenates ``sep2`` unconditionally; a missing one (PLAIN)
        # would raise a TypeError there. It renders as nothing here.
        seps = (self.sep, self.sep2 if self.sep2 is not None else "")
        segments: list[_Segment] = []

        if style in (SeparatorStyle.SINGLE, SeparatorStyle.TWO):
            # SINGLE ends every message with ``sep``; TWO alternates sep / sep2.
            ends = (self.sep, self.sep) if style == SeparatorStyle.SINGLE else seps
            segments.append((self.system + self.sep, False))
            for index, (role, text, present, learnable) in enumerate(messages):
                if not present:
                    segments.append((role + ":", False))
                elif index % 2 == 1:
                    segments += [(role + ":", False), (" " + text + ends[1], learnable)]
                else:
                    segments.append((role + ": " + text + ends[0], False))

        elif style == SeparatorStyle.MPT:
            segments.append((self.system + self.sep, False))
            for index, (role, text, present, learnable) in enumerate(messages):
                if not present:
                    segments.append((role, False))
                elif index % 2 == 1:
                    segments += [(role, False), (text + self.sep, learnable)]
                else:
                    segments.append((role + text + self.sep, False))

        elif style == SeparatorStyle.LLAMA_2:
            for index, (role, text, present, learnable) in enumerate(messages):
                if index == 0:
                    if not present:
                        raise ValueError("LLAMA_2 conversation: the first message must not be empty")
                    if role != self.roles[0]:
                        raise ValueError(f"LLAMA_2 conversation: the first message must come from {self.roles[0]!r}")
                if not present:
                    continue
                if index == 0 and self.system:
                    text = f"<<SYS>>\n{self.system}\n<</SYS>>\n\n" + text
                if index % 2 == 0:
                    segments.append((self.sep + f"[INST] {text} [/INST]", False))
                else:
                    segments.append((" " + text + " " + seps[1], learnable))

        elif style == SeparatorStyle.PLAIN:
            segments.append((self.system, False))
            for index, (_role, text, present, learnable) in enumerate(messages):
                if present:
                    segments.append((text + seps[index % 2], learnable and index % 2 == 1))

        else:
            raise ValueError(f"Invalid style: {style}")
        return segments

    # ------------------------------------------------------------------ editing

    def append_message(self, role: str, message: Any) -> None:
        """Add a ``[role, message]`` pair (``message=None`` opens a turn for generation)."""
        self.messages.append([role, message])

    def process_image(
        self,
        image,
        image_process_mode: str,
        return_pil: bool = False,
        image_format: str = "PNG",
        max_len: int = 1344,
        min_len: int = 672,
    ):
        """One demo image prepared as upstream's web demo shows and sends it.

        ``image_process_mode``: ``Pad`` (to a square on upstream's grey
        (122, 116, 104)), ``Resize`` (to 336x336), ``Crop``/``Default`` (as is).
        An image whose long side exceeds ``max_len`` is scaled down so its short
        side is at most ``min_len`` and its long side at most ``max_len``.
        Returns the PIL image, or the image file (``image_format``) in base64.
        """
        image = _prepare_demo_image(image, image_process_mode, max_len, min_len)
        return image if return_pil else _image_base64(image, image_format)

    def get_images(self, return_pil: bool = False) -> list:
        """The images of the user turns (the demo's ``(text, image, mode)`` messages).

        Each goes through :meth:`process_image`.
        """
        images = []
        for index, (_, message) in enumerate(self.messages[self.offset :]):
            if index % 2 == 0 and isinstance(message, tuple):
                _, image, mode = message
                images.append(self.process_image(image, mode, return_pil=return_pil))
        return images

    def copy(self) -> Conversation:
        """A copy with its own message list (templates are shared; always copy before use)."""
        return Conversation(
            system=self.system,
            roles=self.roles,
            messages=[[role, message] for role, message in self.messages],
            offset=self.offset,
            sep_style=self.sep_style,
            sep=self.sep,
            sep2=self.sep2,
            version=self.version,
        )

    def dict(self) -> dict[str, Any]:
        """A JSON-friendly view (images dropped from the demo's tuples), as upstream's."""
        return {
            "system": self.system,
            "roles": self.roles,
            "messages": [
                [role, message[0] if isinstance(message, tuple) else message] for role, message in self.messages
            ],
            "offset": self.offset,
            "sep": self.sep,
            "sep2": self.sep2,
        }


# Upstream's demo pads images with this colour.
DEMO_PAD_COLOUR = (122, 116, 104)


def _prepare_demo_image(image, mode: str, max_len: int, min_len: int):
    from llava.mm_utils import expand2square

    if mode == "Pad":
        image = expand2square(image, DEMO_PAD_COLOUR)
    elif mode == "Resize":
        image = image.resize((336, 336))
    elif mode not in ("Crop", "Default"):
        raise ValueError(f"Invalid image_process_mode: {mode!r} (Pad, Resize, Crop or Default)")
    long_side, short_side = max(image.size), min(image.size)
    if long_side <= max_len:
        return image
    ratio = long_side / short_side
    new_short = int(min(max_len / ratio, min_len, short_side))
    new_long = int(new_short * ratio)
    width, height = image.size
    return image.resize((new_short, new_long) if height > width else (new_long, new_short))


def _image_base64(image, image_format: str) -> str:
    import base64
    from io import BytesIO

    buffer = BytesIO()
    image.save(buffer, format=image_format)
    return base64.b64encode(buffer.getvalue()).decode()


# --------------------------------------------------------------------- templates
# Strings and versions are upstream's (LLaVA 1.2.2.post1), character for character.

_VICUNA_V0_EXAMPLE_ANSWER = (
    "Renewable energy sources are those that can be replenished naturally in a relatively "
    "short amount of time, such as solar, wind, hydro, geothermal, and biomass. "
    "Non-renewable energy sources, on the other hand, are finite and will eventually be "
    "depleted, such as coal, oil, and natural gas. Here are some key differences between "
    "renewable and non-renewable energy sources:\n"
    "1. Availability: Renewable energy sources are virtually inexhaustible, while non-renewable "
    "energy sources are finite and will eventually run out.\n"
    "2. Environmental impact: Renewable energy sources have a much lower environmental impact "
    "than non-renewable sources, which can lead to air and water pollution, greenhouse gas emissions, "
    "and other negative effects.\n"
    "3. Cost: Renewable energy sources can be more expensive to initially set up, but they typically "
    "have lower operational costs than non-renewable sources.\n"
    "4. Reliability: Renewable energy sources are often more reliable and can be used in more remote "
    "locations than non-renewable sources.\n"
    "5. Flexibility: Renewable energy sources are often more flexible and can be adapted to different "
    "situations and needs, while non-renewable sources are more rigid and inflexible.\n"
    "6. Sustainability: Renewable energy sources are more sustainable over the long term, while "
    "non-renewable sources are not, and their depletion can lead to economic and social instability.\n"
)

_HUMAN_SYSTEM = (
    "A chat between a curious human and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the human's questions."
)
_USER_SYSTEM = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions."
)
_MMTAG_SYSTEM = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant is able to understand the visual content that the user provides, "
    "and assist the user with a variety of tasks using natural language."
    "The visual content will be provided with the following format: <Image>visual content</Image>."
)
_LLAMA_2_SYSTEM = (
    "You are a helpful, respectful and honest assistant. Always answer as helpfully as possible, "
    "while being safe.  Your answers should not include any harmful, unethical, racist, sexist, "
    "toxic, dangerous, or illegal content. Please ensure that your responses are socially unbiased "
    "and positive in nature.\n\n"
    "If a question does not make any sense, or is not factually coherent, explain why instead of "
    "answering something not correct. If you don't know the answer to a question, please don't "
    "share false information."
)
_LLAVA_LLAMA_2_SYSTEM = (
    "You are a helpful language and vision assistant. "
    "You are able to understand the visual content that the user provides, "
    "and assist the user with a variety of tasks using natural language."
)


# The templates differ only in their system prompt, roles, separators and version tag.
_CHAT_ROLES = ("USER", "ASSISTANT")
_HUMAN_ROLES = ("Human", "Assistant")
_CHATML_ROLES = ("<|im_start|>user\n", "<|im_start|>assistant\n")
_SINGLE, _TWO, _MPT = SeparatorStyle.SINGLE, SeparatorStyle.TWO, SeparatorStyle.MPT
_LLAMA_2, _PLAIN = SeparatorStyle.LLAMA_2, SeparatorStyle.PLAIN


def _template(
    system: str,
    roles: tuple[str, str],
    style: SeparatorStyle,
    sep: str,
    sep2: str | None = None,
    version: str = "Unknown",
) -> Conversation:
    """An empty conversation (no example turns) with these settings."""
    return Conversation(system, roles, (), 0, style, sep, sep2, version)


conv_vicuna_v0 = dataclasses.replace(
    _template(_HUMAN_SYSTEM, _HUMAN_ROLES, _SINGLE, "###"),
    messages=(
        ("Human", "What are the key differences between renewable and non-renewable energy sources?"),
        ("Assistant", _VICUNA_V0_EXAMPLE_ANSWER),
    ),
    offset=2,
)
conv_vicuna_v1 = _template(_USER_SYSTEM, _CHAT_ROLES, _TWO, " ", "</s>", "v1")
conv_llama_2 = _template(_LLAMA_2_SYSTEM, _CHAT_ROLES, _LLAMA_2, "<s>", "</s>", "llama_v2")
conv_llava_llama_2 = _template(_LLAVA_LLAMA_2_SYSTEM, _CHAT_ROLES, _LLAMA_2, "<s>", "</s>", "llama_v2")
conv_mistral_instruct = _template("", _CHAT_ROLES, _LLAMA_2, "", "</s>", "llama_v2")
_CHATML_DIRECT_SYSTEM = "<|im_start|>system\nAnswer the questions."
conv_chatml_direct = _template(_CHATML_DIRECT_SYSTEM, _CHATML_ROLES, _MPT, "<|im_end|>", None, "mpt")
_MPT_SYSTEM = (
    "<|im_start|>system\n"
    "A conversation between a user and an LLM-based AI assistant. "
    "The assistant gives helpful and honest answers."
)
conv_mpt = _template(_MPT_SYSTEM, _CHATML_ROLES, _MPT, "<|im_end|>", None, "mpt")
conv_llava_plain = _template("", ("", ""), _PLAIN, "\n")
conv_llava_v0 = _template(_HUMAN_SYSTEM, _HUMAN_ROLES, _SINGLE, "###")
conv_llava_v0_mmtag = _template(_MMTAG_SYSTEM, _HUMAN_ROLES, _SINGLE, "###", None, "v0_mmtag")
conv_llava_v1 = _template(_HUMAN_SYSTEM, _CHAT_ROLES, _TWO, " ", "</s>", "v1")
conv_llava_v1_mmtag = _template(_MMTAG_SYSTEM, _CHAT_ROLES, _TWO, " ", "</s>", "v1_mmtag")

# Upstream 1.2.2.post1's default. Upstream's train() replaces it with the
# --version template for every version except v0 (and v0.5), so a v0 run
# trains with this template; llava.train.data reads it at call time.
default_conversation = conv_vicuna_v1

conv_templates: dict[str, Conversation] = {
    "default": conv_vicuna_v0,
    "v0": conv_vicuna_v0,
    "v1": conv_vicuna_v1,
    "vicuna_v1": conv_vicuna_v1,
    "llama_2": conv_llama_2,
    "mistral_instruct": conv_mistral_instruct,
    "chatml_direct": conv_chatml_direct,
    "mistral_direct": conv_chatml_direct,
    "plain": conv_llava_plain,
    "v0_plain": conv_llava_plain,
    "llava_v0": conv_llava_v0,
    "v0_mmtag": conv_llava_v0_mmtag,
    "llava_v1": conv_llava_v1,
    "v1_mmtag": conv_llava_v1_mmtag,
    "llava_llama_2": conv_llava_llama_2,
    "mpt": conv_mpt,
}


def conv_mode_for_model(model_name: str, mix_is_mistral: bool = False) -> str:
    """The template upstream's scripts pick from a model's name (``llava-v1.5-7b`` -> ``llava_v1``).

    ``mix_is_mistral``: a name with ``mix`` in it (Mixtral) also gets ``mistral_instruct``, as in
    upstream's serving code.
    """
    name = model_name.lower()
    if "llama-2" in name:
        return "llava_llama_2"
    if "mistral" in name or (mix_is_mistral and "mix" in name):
        return "mistral_instruct"
    if "v1.6-34b" in name:
        return "chatml_direct"
    if "v1" in name:
        return "llava_v1"
    if "mpt" in name:
        return "mpt"
    return "llava_v0"


def template_for_version(version: str) -> Conversation:
    """The template upstream's ``train()`` trains ``--version`` with (a private copy).

    Upstream keeps the module default for ``v0`` and ``v0.5``, uses
    ``conv_templates[version]`` when the key exists and falls back on
    ``vicuna_v1`` otherwise. ``default_conversation`` is read at call time.
    """
    if version in ("v0", "v0.5"):
        return default_conversation.copy()
    return conv_templates.get(version, conv_templates["vicuna_v1"]).copy()


if __name__ == "__main__":
    print(default_conversation.get_prompt())
