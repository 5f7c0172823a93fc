"""Which validation questions are asked, in which prompts, and how they are batched over ranks.

The generation half of evaluation between epochs (the Trainer glue is
``llava.train.evaluation``); docs/EVALUATION.md is the manual.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from llava.eval.generation import image_turn, open_prompt

logger = logging.getLogger("llava")

__all__ = ["GenerationItem", "generation_items", "generation_prompt", "plan_batches", "select_subset"]


@dataclass(frozen=True)
class GenerationItem:
    """One validation question prepared for generation.

    ``position``: the record's index in the validation file. ``prompt``: the
    training prompt up to the answer (assistant turn open). ``answers``: the
    record's ``answers``, or its first reply when it has none. ``choice_prompt``:
    the same question with lettered options (:func:`llava.metrics.choices.choice_prompt`)
    in the same template, for records with ``choices`` and ``correct_choice_idx``.
    """

    position: int
    question_id: Any
    question: str
    prompt: str
    image: str | None
    answers: tuple[str, ...]
    question_type: str | None
    # Multiple choice (A-OKVQA): the options, the right one, and the lettered prompt.
    choices: tuple[str, ...] | None = None
    correct_choice_idx: int | None = None
    choice_prompt: str | None = None


def generation_prompt(human_value: str, template, has_image: bool, data_args) -> str:
    """The prompt training shows before the answer: the human turn, then the open assistant turn.

    The human turn is formatted as in training (``<image>`` moved to the front,
    ``<im_start>``/``<im_end>`` with ``data_args.mm_use_im_start_end``), so the
    training prompt of the record starts with exactly this text.
    """
    if has_image and data_args.is_multimodal:
        human_value = image_turn(human_value, template, data_args.mm_use_im_start_end)
    return open_prompt(human_value, template)


def _first_exchange(entry: Mapping) -> tuple[str | None, str | None]:
    """The first human turn's value and the reply after it (None where missing)."""
    turns = entry.get("conversations")
    if not isinstance(turns, list):
        return None, None
    for index, turn in enumerate(turns):
        if isinstance(turn, Mapping) and turn.get("from") == "human" and isinstance(turn.get("value"), str):
            following = turns[index + 1] if index + 1 < len(turns) else None
            reply = following.get("value") if isinstance(following, Mapping) else None
            return turn["value"], reply if isinstance(reply, str) and reply.strip() else None
    return None, None


def generation_items(
    entries: Sequence[Mapping], template, data_args, positions: Sequence[int] | None = None
) -> list[GenerationItem]:
    """A :class:`GenerationItem` per record that has a human turn and something to score against.

    ``positions``: each record's index in its file (the preflight's ``source_indices``);
    default 0, 1, ...; ``data_args`` needs ``is_multimodal`` and ``mm_use_im_start_end``.
    The ``question_id`` is the record's ``question_id``, else its ``id``, else its position.
    Records without a human turn or without answers (no ``answers`` and no reply) are
    skipped and counted in a warning.
    """
    from llava.constants import DEFAULT_IMAGE_TOKEN
    from llava.metrics.choices import bare_question, choice_prompt

    positions = range(len(entries)) if positions is None else positions
    items, skipped, bad_choices = [], 0, []
    for position, entry in zip(positions, entries, strict=True):
        human, reply = _first_exchange(entry)
        answers = entry.get("answers")
        if not (isinstance(answers, list) and answers and all(isinstance(a, str) for a in answers)):
            answers = [reply] if reply is not None else None
        if human is None or answers is None:
            skipped += 1
            continue
        has_image = "image" in entry
        question_type = entry.get("question_type")
        question_id = entry.get("question_id", entry.get("id", position))
        choices, correct, lettered = entry.get("choices"), entry.get("correct_choice_idx"), None
        if choices is not None or correct is not None:
            if not (
                isinstance(choices, list)
                and 2 <= len(choices) <= 26
                and all(isinstance(choice, str) for choice in choices)
                and isinstance(correct, int)
                and 0 <= correct < len(choices)
            ):
                bad_choices.append(str(question_id))
                continue
            human_choices = choice_prompt(bare_question(human), choices)
            if has_image:
                human_choices = DEFAULT_IMAGE_TOKEN + "\n" + human_choices
            lettered = generation_prompt(human_choices, template, has_image, data_args)
        items.append(
            GenerationItem(
                position=position,
                question_id=question_id,
                question=human.replace(DEFAULT_IMAGE_TOKEN, "").strip(),
                prompt=generation_prompt(human, template, has_image, data_args),
                image=entry["image"] if has_image else None,
                answers=tuple(answers),
                question_type=None if question_type in (None, "") else str(question_type),
                choices=None if lettered is None else tuple(choices),
                correct_choice_idx=None if lettered is None else correct,
                choice_prompt=lettered,
            )
        )
    if bad_choices:
        raise ValueError(
            f"validation records with unusable 'choices'/'correct_choice_idx' (need 2 to 26 strings and an index "
            f"into them): question ids {', '.join(bad_choices[:20])}" + (" ..." if len(bad_choices) > 20 else "")
        )
    if skipped:
        logger.warning(
            "Evaluation: %d validation records have no human turn or nothing to score against "
            "(no 'answers' and no reply); they count for the eval loss only",
            skipped,
        )
    return items


def select_subset(items: Sequence[GenerationItem], max_samples: int | None, seed: int) -> list[GenerationItem]:
    """``max_samples`` items drawn with ``seed`` (in file order), or all of them."""
    if max_samples is None or max_samples >= len(items):
        return list(items)
    chosen = sorted(random.Random(seed).sample(range(len(items)), max_samples))
    return [items[index] for index in chosen]


def plan_batches(
    items: Sequence[GenerationItem], batch_size: int, rank: int = 0, world_size: int = 1
) -> list[list[tuple[int, bool]]]:
    """This rank's generation batches: lists of ``(index into items, is_padding)``.

    Image questions come first, then text-only ones (a batch never mixes them).
    Each kind is dealt round-robin over the ranks and every shorter shard is padded
    with copies of the kind's first item (``is_padding`` True, answers dropped), so
    every rank runs the same number of batches, of the same kinds and sizes: under
    ZeRO-3 each forward is collective. Within a shard, longer prompts come first so
    a batch holds prompts of similar length (less padding).
    """
    if batch_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"need batch_size >= 1 and 0 <= rank < world_size; got {batch_size}, {rank}, {world_size}")
    batches: list[list[tuple[int, bool]]] = []
    for with_image in (True, False):
        group = [index for index, item in enumerate(items) if (item.image is not None) == with_image]
        if not group:
            continue
        per_rank = math.ceil(len(group) / world_size)
        shard = sorted(group[rank::world_size], key=lambda index: -len(items[index].prompt))
        planned = [(index, False) for index in shard] + [(group[0], True)] * (per_rank - len(shard))
        batches += [planned[start : start + batch_size] for start in range(0, per_rank, batch_size)]
    return batches
