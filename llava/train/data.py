"""Training data: conversation records -> input ids, labels and pixels, and the batch collator.

Each record's conversation is rendered in the template once, tokenized once
(upstream's split on ``<image>``), and a token is learned iff its character span
overlaps an assistant reply: no per-round re-tokenization, so no "tokenization
mismatch". docs/TRAINING.md describes the data format and the masking.

About 550 lines on purpose: the dataset, the label masking and the collator share
one record contract and one error type (:class:`DatasetError`); apart, each would
restate it.
"""

from __future__ import annotations

import copy
import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from itertools import accumulate
from typing import Any

import torch
from torch.utils.data import Dataset

from llava import conversation as conversation_lib
from llava.constants import (
    DEFAULT_IMAGE_TOKEN,
    IGNORE_INDEX,
    IMAGE_TOKEN_INDEX,
)
from llava.conversation import Conversation, SeparatorStyle
from llava.eval.generation import image_turn
from llava.mm_utils import process_images, tokenizer_image_token_with_offsets

logger = logging.getLogger(__name__)

HUMAN, GPT = "human", "gpt"
# Words an image adds to a sample's length for length-grouped batching (upstream's constant).
IMAGE_LENGTH_IN_WORDS = 128


class DatasetError(ValueError):
    """A training record (or the data file) cannot be turned into a sample; the message says which and why."""


# ------------------------------------------------------------------- templates


def resolve_template(conversation_template: Conversation | str | None = None) -> Conversation:
    """The template to use: the given one, a ``conv_templates`` key, or (None) the module default *now*."""
    if conversation_template is None:
        return conversation_lib.default_conversation
    if isinstance(conversation_template, str):
        try:
            return conversation_lib.conv_templates[conversation_template]
        except KeyError:
            known = ", ".join(sorted(conversation_lib.conv_templates))
            raise ValueError(f"unknown conversation template {conversation_template!r}; known: {known}") from None
    return conversation_template


# --------------------------------------------------------------- record checks


def describe_entry(index: int, entry: Any) -> str:
    """``entry 3 (id 'abc')``: how messages name a record."""
    sample_id = entry.get("id") if isinstance(entry, Mapping) else None
    return f"entry {index} (id {sample_id!r})"


# Problems that make a conversation impossible to render; the others (empty
# values, ...) render as upstream renders them and are left to the preflight.
STRUCTURAL_PROBLEMS = ("missing_conversations", "bad_turn", "bad_role", "bad_alternation")


def check_conversation(turns: Any) -> list[tuple[str, str]]:
    """Every problem of a record's ``conversations`` value, as ``(kind, message)`` pairs.

    Kinds: ``missing_conversations``, ``bad_turn`` (not an object with string
    ``from`` and ``value``), ``bad_role`` (``from`` is not human/gpt),
    ``bad_alternation`` (turns must alternate human, gpt, ...; one leading gpt
    turn is dropped, as upstream), ``empty_value``.
    """
    if not isinstance(turns, list) or not turns:
        found = "missing" if turns is None else f"{type(turns).__name__} {str(turns)[:40]!r}"
        return [("missing_conversations", f"'conversations' must be a non-empty list of turns; found {found}")]
    problems: list[tuple[str, str]] = []
    roles: list[str | None] = []
    for number, turn in enumerate(turns):
        if (
            not isinstance(turn, Mapping)
            or not isinstance(turn.get("from"), str)
            or not isinstance(turn.get("value"), str)
        ):
            problems.append(
                (
                    "bad_turn",
                    f"turn {number} must be an object with string 'from' and 'value'; found {str(turn)[:60]!r}",
                )
            )
            roles.append(None)
            continue
        role = turn["from"]
        if role not in (HUMAN, GPT):
            problems.append(("bad_role", f"turn {number} is from {role!r}; expected 'human' or 'gpt'"))
        if not turn["value"].strip():
            problems.append(("empty_value", f"turn {number} ({role}) has an empty value"))
        roles.append(role)
    if any(role not in (HUMAN, GPT) for role in roles):
        return problems  # alternation is meaningless until every role is known
    first = 1 if roles[0] == GPT else 0
    for number in range(first, len(roles)):
        expected = HUMAN if (number - first) % 2 == 0 else GPT
        if roles[number] != expected:
            problems.append(
                (
                    "bad_alternation",
                    f"turn {number} is from {roles[number]!r} but {expected!r} was expected "
                    "(turns alternate human, gpt, ...; a leading gpt turn is dropped)",
                )
            )
            break
    if first == len(roles):
        problems.append(("bad_alternation", "the only turn is from 'gpt'; nothing to answer"))
    return problems


def _sample_prefix(sample_id: Any) -> str:
    return f"sample {sample_id!r}: " if sample_id is not None else ""


# ------------------------------------------------------------------ multimodal


def preprocess_multimodal(
    sources: Sequence[list[dict]],
    data_args,
    conversation_template: Conversation | str | None = None,
) -> Sequence[list[dict]]:
    """Put each turn's ``<image>`` at its front, as upstream; edits ``sources`` in place and returns it.

    With ``data_args.is_multimodal`` false, nothing changes. In a turn that
    holds ``<image>``, every ``<image>`` is removed and one is put back in
    front followed by a newline (stripped); an mmtag template wraps it as
    ``<Image><image></Image>``. With ``data_args.mm_use_im_start_end`` every
    ``<image>`` becomes ``<im_start><image><im_end>``. The template (for the
    mmtag check) is ``conversation_template`` or, when None, the module's
    ``default_conversation`` read now.
    """
    if not data_args.is_multimodal:
        return sources
    template = resolve_template(conversation_template)
    for source in sources:
        for turn in source:
            turn["value"] = image_turn(turn["value"], template, data_args.mm_use_im_start_end)
    return sources


# ---------------------------------------------------------- prompts and labels


def conversation_prompt(
    turns: list[dict], template: Conversation, sample_id: Any = None
) -> tuple[str, list[tuple[int, int]]]:
    """The training prompt of one record's turns and the character spans to learn.

    Raises :class:`DatasetError` (naming ``sample_id``) for turns that cannot
    be rendered: missing, malformed, unknown roles, not alternating.
    """
    structural = [message for kind, message in check_conversation(turns) if kind in STRUCTURAL_PROBLEMS]
    if structural:
        raise DatasetError(_sample_prefix(sample_id) + "; ".join(structural))
    if turns[0]["from"] == GPT:
        turns = turns[1:]  # upstream drops a leading gpt turn

    conv = template.copy()
    conv.messages = []
    conv.offset = 0  # the template's example messages are gone; every reply is learned
    if template.sep_style == SeparatorStyle.PLAIN:
        # Upstream's preprocess_plain trains on "<image>" + caption + sep: the
        # human turn is reduced to the image and the caption follows it
        # directly. That is the PLAIN rendering with the separators shifted
        # (nothing after the image, ``sep`` after the caption).
        if len(turns) != 2 or DEFAULT_IMAGE_TOKEN not in turns[0]["value"]:
            raise DatasetError(
                f"{_sample_prefix(sample_id)}the plain template (pretraining) needs exactly one human turn "
                f"holding {DEFAULT_IMAGE_TOKEN} and one gpt turn (the caption); found {len(turns)} turns"
            )
        conv.sep, conv.sep2 = "", template.sep
        conv.append_message(conv.roles[0], DEFAULT_IMAGE_TOKEN)
        conv.append_message(conv.roles[1], turns[1]["value"])
    else:
        for turn in turns:
            conv.append_message(conv.roles[0] if turn["from"] == HUMAN else conv.roles[1], turn["value"])
    return conv.get_prompt_and_targets()


def labels_from_spans(
    input_ids: Sequence[int],
    token_spans: Sequence[tuple[int, int]],
    learned_spans: Iterable[tuple[int, int]],
    prompt_length: int,
    image_token_index: int = IMAGE_TOKEN_INDEX,
) -> list[int]:
    """Labels for ``input_ids``: the id where the token's span overlaps a learned span, else ``IGNORE_INDEX``.

    A zero-width token (``start == end``) counts as part of the character that
    follows it. Image tokens are never learned.
    """
    learned = bytearray(prompt_length + 1)
    for start, end in learned_spans:
        learned[start:end] = b"\x01" * (end - start)
    learned_before = list(accumulate(learned, initial=0))  # learned_before[i] = learned chars in [0, i)
    labels = []
    for token, (start, end) in zip(input_ids, token_spans, strict=True):
        if token == image_token_index:
            is_learned = False
        elif end > start:
            is_learned = learned_before[end] > learned_before[start]
        else:
            is_learned = start < prompt_length and bool(learned[start])
        labels.append(token if is_learned else IGNORE_INDEX)
    return labels


@dataclass(frozen=True)
class TokenizedSample:
    """One record as the model sees it, with the prompt it came from."""

    input_ids: list[int]
    labels: list[int]
    prompt: str
    learned_spans: list[tuple[int, int]]

    @property
    def num_learned(self) -> int:
        return sum(label != IGNORE_INDEX for label in self.labels)


def tokenize_conversation(
    turns: list[dict],
    tokenizer,
    template: Conversation,
    has_image: bool,
    sample_id: Any = None,
    truncate: bool = True,
) -> TokenizedSample:
    """Render, tokenize once and label one record's (already multimodal-preprocessed) turns.

    ``has_image``: split the prompt on ``<image>`` as upstream's
    ``tokenizer_image_token``; otherwise tokenize it whole and, with
    ``truncate``, cut it to ``tokenizer.model_max_length`` (upstream truncates
    text-only samples when tokenizing; samples with images are cut by the
    model after the image features are spliced in).
    """
    prompt, learned_spans = conversation_prompt(turns, template, sample_id)
    input_ids, token_spans = tokenizer_image_token_with_offsets(prompt, tokenizer, split_images=has_image)
    labels = labels_from_spans(input_ids, token_spans, learned_spans, len(prompt))
    if truncate and not has_image:
        input_ids, labels = input_ids[: tokenizer.model_max_length], labels[: tokenizer.model_max_length]
    return TokenizedSample(input_ids, labels, prompt, learned_spans)


def preprocess(
    sources: Sequence[list[dict]],
    tokenizer,
    has_image: bool = False,
    *,
    conversation_template: Conversation | str | None = None,
    sample_ids: Sequence[Any] | None = None,
) -> dict[str, list[torch.Tensor]]:
    """Token ids and labels for each conversation in ``sources``, as upstream's ``preprocess``.

    Returns ``dict(input_ids=[LongTensor, ...], labels=[LongTensor, ...])``,
    one pair per source. The template is ``conversation_template`` or, when
    None, ``llava.conversation.default_conversation`` read now. ``sample_ids``
    name the sources in errors and warnings. A sample with no learnable token
    is returned as is and logged as a warning (it would train on nothing).
    """
    template = resolve_template(conversation_template)
    input_ids, labels = [], []
    for number, turns in enumerate(sources):
        sample_id = sample_ids[number] if sample_ids is not None else None
        sample = tokenize_conversation(turns, tokenizer, template, has_image, sample_id)
        if sample.num_learned == 0:
            name = f"sample {sample_id!r}" if sample_id is not None else f"source {number}"
            logger.warning("%s has no learnable tokens: it would train on nothing", name)
        input_ids.append(torch.tensor(sample.input_ids, dtype=torch.long))
        labels.append(torch.tensor(sample.labels, dtype=torch.long))
    return dict(input_ids=input_ids, labels=labels)


# ----------------------------------------------------------------- data files


def json_error_message(data_path: str | os.PathLike, error: json.JSONDecodeError) -> str:
    return (
        f"data file {data_path} is not well-formed JSON: {error.msg} "
        f"(line {error.lineno}, column {error.colno}, character {error.pos})"
    )


def read_data_file(data_path: str | os.PathLike) -> list:
    """The JSON list of records in ``data_path``; :class:`DatasetError` says what is wrong otherwise."""
    try:
        with open(data_path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        raise DatasetError(f"data file {data_path} does not exist") from None
    except json.JSONDecodeError as error:
        raise DatasetError(json_error_message(data_path, error)) from error
    if not isinstance(data, list):
        raise DatasetError(f"data file {data_path} must hold a JSON list of records; found a {type(data).__name__}")
    return data


class SelectedEntries(list):
    """Records picked from a data file, remembering their positions in it (for messages).

    A plain list of records with two attributes: ``source_indices`` (the
    position of each record in the file) and ``data_path``.
    """

    def __init__(
        self, entries: Iterable[Any], source_indices: Iterable[int], data_path: str | os.PathLike | None = None
    ):
        super().__init__(entries)
        self.source_indices = list(source_indices)
        self.data_path = None if data_path is None else str(data_path)
        if len(self.source_indices) != len(self):
            raise ValueError(f"{len(self)} entries but {len(self.source_indices)} source indices")


# -------------------------------------------------------------------- dataset


def _word_count(entry: Any) -> int:
    turns = entry.get("conversations") if isinstance(entry, Mapping) else None
    if not isinstance(turns, list):
        return 0
    return sum(len(str(turn.get("value", "")).split()) for turn in turns if isinstance(turn, Mapping))


def _has_image(entry: Any) -> bool:
    return isinstance(entry, Mapping) and "image" in entry


class LazySupervisedDataset(Dataset):
    """Supervised fine-tuning samples, tokenized and image-processed on access.

    ``data_path``: the JSON list of records (read once, here). ``entries``:
    records already loaded (for example the ones the preflight kept, a
    :class:`SelectedEntries`); ``data_path`` then only names their file in
    messages, and ``entry_indices`` (default: ``entries.source_indices`` or
    0, 1, ...) their positions in it.

    ``data_args`` attributes: ``image_folder``, ``image_processor``,
    ``is_multimodal``, ``image_aspect_ratio`` ("pad" or anything else),
    ``mm_use_im_start_end``. The template is ``conversation_template``, or
    ``llava.conversation.default_conversation`` as it is when the dataset is
    built (upstream's train() sets that global before building the data).

    Items: ``input_ids`` and ``labels`` (1-D LongTensors), plus ``image``
    (3 x H x W float) for a record with an image, or a zero image of the
    processor's crop size for a text-only record when ``is_multimodal``.
    """

    def __init__(
        self,
        data_path: str | os.PathLike | None,
        tokenizer,
        data_args,
        conversation_template: Conversation | str | None = None,
        *,
        entries: Sequence[Any] | None = None,
        entry_indices: Sequence[int] | None = None,
    ):
        super().__init__()
        if entries is None:
            if data_path is None:
                raise ValueError("LazySupervisedDataset needs a data_path or entries")
            entries = read_data_file(data_path)
        if entry_indices is None:
            entry_indices = entries.source_indices if isinstance(entries, SelectedEntries) else range(len(entries))
        if data_path is None:
            data_path = (entries.data_path if isinstance(entries, SelectedEntries) else None) or "<entries in memory>"
        self.data_path = str(data_path)
        self.list_data_dict = list(entries)  # upstream's attribute name
        self.entry_indices = list(entry_indices)
        if len(self.entry_indices) != len(self.list_data_dict):
            raise ValueError(f"{len(self.list_data_dict)} entries but {len(self.entry_indices)} entry indices")
        self.tokenizer = tokenizer
        self.data_args = data_args
        self.template = resolve_template(conversation_template)
        self.num_unlearnable_samples = 0  # counted in this process (each DataLoader worker has its own)
        # Training sets this: items then carry "sample_id" (the record's id, else its index in the
        # file), the collator gathers them as "sample_ids", and a diverged step names its batch.
        self.with_sample_ids = False
        logger.info("Training data: %d records from %s (tokenized lazily)", len(self.list_data_dict), self.data_path)

    def __len__(self) -> int:
        return len(self.list_data_dict)

    @cached_property
    def lengths(self) -> list[int]:
        """Per record: the word count of all turns, plus 128 with an image (upstream's rule)."""
        return [
            _word_count(entry) + (IMAGE_LENGTH_IN_WORDS if _has_image(entry) else 0) for entry in self.list_data_dict
        ]

    @cached_property
    def modality_lengths(self) -> list[int]:
        """Per record: the word count of all turns, negative for text-only records (upstream's rule)."""
        return [_word_count(entry) if _has_image(entry) else -_word_count(entry) for entry in self.list_data_dict]

    def _where(self, i: int) -> str:
        return f"data file {self.data_path}, {describe_entry(self.entry_indices[i], self.list_data_dict[i])}"

    def _load_image(self, image_file: Any) -> torch.Tensor:
        from llava.images import ImageReadError, open_image

        if not isinstance(image_file, str) or not image_file:
            raise DatasetError(f"'image' must be a non-empty relative path; found {image_file!r}")
        folder = self.data_args.image_folder
        path = os.path.join(folder, image_file) if folder else image_file
        processor = self.data_args.image_processor
        if processor is None:
            raise DatasetError("the record has an image but data_args.image_processor is not set")
        try:
            image = open_image(path)
        except ImageReadError as error:  # missing, unreadable or truncated file
            raise DatasetError(str(error)) from error
        return process_images([image], processor, self.data_args)[0]

    def _zero_image(self) -> torch.Tensor:
        processor = self.data_args.image_processor
        if processor is None:
            raise DatasetError("data_args.is_multimodal is set but data_args.image_processor is not")
        crop_size = processor.crop_size
        return torch.zeros(3, crop_size["height"], crop_size["width"])

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        entry = self.list_data_dict[i]
        if not isinstance(entry, Mapping):
            raise DatasetError(f"{self._where(i)} is not a JSON object: {str(entry)[:60]!r}")
        has_image = "image" in entry
        turns = copy.deepcopy(entry.get("conversations"))
        item: dict[str, torch.Tensor] = {}
        try:
            structural = [message for kind, message in check_conversation(turns) if kind in STRUCTURAL_PROBLEMS]
            if structural:
                raise DatasetError("; ".join(structural))
            if has_image:
                item["image"] = self._load_image(entry["image"])
                turns = preprocess_multimodal([turns], self.data_args, self.template)[0]
            sample = tokenize_conversation(turns, self.tokenizer, self.template, has_image)
        except DatasetError as error:
            raise DatasetError(f"{self._where(i)}: {error}") from error
        if sample.num_learned == 0:
            self.num_unlearnable_samples += 1
            logger.warning(
                "%s has no learnable tokens and trains on nothing (%d such samples so far in this process); "
                "run the preflight (python -m llava.train.preflight) to find them all",
                self._where(i),
                self.num_unlearnable_samples,
            )
        item["input_ids"] = torch.tensor(sample.input_ids, dtype=torch.long)
        item["labels"] = torch.tensor(sample.labels, dtype=torch.long)
        if not has_image and self.data_args.is_multimodal:
            try:
                item["image"] = self._zero_image()  # keeps batches uniform; no image token, so unused
            except DatasetError as error:
                raise DatasetError(f"{self._where(i)}: {error}") from error
        result = {key: item[key] for key in ("input_ids", "labels", "image") if key in item}
        if self.with_sample_ids:
            result["sample_id"] = entry.get("id", f"entry {self.entry_indices[i]}")
        return result


# ------------------------------------------------------------------- collator


@dataclass
class DataCollatorForSupervisedDataset:
    """Pad a list of samples into a batch, as upstream's collator.

    ``input_ids`` are right-padded with the tokenizer's pad id, ``labels`` with
    ``IGNORE_INDEX``, both cut to ``tokenizer.model_max_length``;
    ``attention_mask`` is ``input_ids != pad id``; ``images`` are stacked when
    every sample has one of the same shape, else given as a list.

    Example (pad id 0, as with ``pad_token = unk_token``)::

        >>> import torch
        >>> from types import SimpleNamespace
        >>> collator = DataCollatorForSupervisedDataset(SimpleNamespace(pad_token_id=0, model_max_length=512))
        >>> batch = collator([
        ...     {"input_ids": torch.tensor([1, 319, -200, 263, 2]),
        ...      "labels": torch.tensor([-100, -100, -100, 263, 2]),
        ...      "image": torch.zeros(3, 2, 2)},
        ...     {"input_ids": torch.tensor([1, 450, 2]),
        ...      "labels": torch.tensor([-100, 450, 2]),
        ...      "image": torch.ones(3, 2, 2)},
        ... ])
        >>> batch["input_ids"]
        tensor([[   1,  319, -200,  263,    2],
                [   1,  450,    2,    0,    0]])
        >>> batch["labels"]
        tensor([[-100, -100, -100,  263,    2],
                [-100,  450,    2, -100, -100]])
        >>> batch["attention_mask"]
        tensor([[ True,  True,  True,  True,  True],
                [ True,  True,  True, False, False]])
        >>> batch["images"].shape
        torch.Size([2, 3, 2, 2])
    """

    tokenizer: Any

    def __call__(self, instances: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        pad_id = self.tokenizer.pad_token_id
        if pad_id is None:
            raise ValueError(
                "the tokenizer has no pad token; set tokenizer.pad_token = tokenizer.unk_token as upstream does"
            )
        max_length = self.tokenizer.model_max_length
        input_ids = torch.nn.utils.rnn.pad_sequence(
            [torch.as_tensor(instance["input_ids"], dtype=torch.long) for instance in instances],
            batch_first=True,
            padding_value=pad_id,
        )[:, :max_length]
        labels = torch.nn.utils.rnn.pad_sequence(
            [torch.as_tensor(instance["labels"], dtype=torch.long) for instance in instances],
            batch_first=True,
            padding_value=IGNORE_INDEX,
        )[:, :max_length]
        batch: dict[str, Any] = dict(input_ids=input_ids, labels=labels, attention_mask=input_ids.ne(pad_id))
        if "sample_id" in instances[0]:  # training only: LLaVATrainer.training_step takes them out
            batch["sample_ids"] = [instance["sample_id"] for instance in instances]
        if "image" in instances[0]:
            images = [instance.get("image") for instance in instances]
            if all(image is not None and image.shape == images[0].shape for image in images):
                batch["images"] = torch.stack(images)
            else:
                batch["images"] = images
        return batch


def make_supervised_data_module(
    tokenizer,
    data_args,
    conversation_template: Conversation | str | None = None,
    *,
    entries: Sequence[Any] | None = None,
    entry_indices: Sequence[int] | None = None,
) -> dict[str, Any]:
    """``dict(train_dataset=..., eval_dataset=None, data_collator=...)`` for the Trainer, as upstream.

    ``entries`` (for example the preflight's kept records) replaces reading
    ``data_args.data_path``; see :class:`LazySupervisedDataset`.
    """
    train_dataset = LazySupervisedDataset(
        data_args.data_path,
        tokenizer,
        data_args,
        conversation_template,
        entries=entries,
        entry_indices=entry_indices,
    )
    return dict(
        train_dataset=train_dataset, eval_dataset=None, data_collator=DataCollatorForSupervisedDataset(tokenizer)
    )
