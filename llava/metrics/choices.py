"""Multiple-choice questions: the lettered prompt, reading a letter back, choice accuracy.

The prompt follows upstream LLaVA's multiple-choice evaluation (MMBench,
ScienceQA): the question, one ``"A. option"`` line per choice, then the suffix
``"Answer with the option's letter from the given choices directly."``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

__all__ = [
    "MULTIPLE_CHOICE_SUFFIX",
    "OPTION_LETTERS",
    "SHORT_ANSWER_SUFFIX",
    "bare_question",
    "choice_prompt",
    "parse_choice",
    "score_choices",
]

OPTION_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
MULTIPLE_CHOICE_SUFFIX = "Answer with the option's letter from the given choices directly."
# LLaVA-1.5's short-answer VQA suffix (the direct-answer prompt of the converters).
SHORT_ANSWER_SUFFIX = "Answer the question using a single word or phrase."


def bare_question(human_turn: str) -> str:
    r"""A direct-answer human turn without ``<image>`` and the short-answer suffix::

    >>> bare_question("<image>\nWhat is it?\nAnswer the question using a single word or phrase.")
    'What is it?'
    """
    text = human_turn.replace("<image>", "").strip()
    return text.removesuffix(SHORT_ANSWER_SUFFIX).strip()


def choice_prompt(question: str, choices: Sequence[str], suffix: str = MULTIPLE_CHOICE_SUFFIX) -> str:
    """The lettered prompt text (no ``<image>``)::

    >>> print(choice_prompt("What is it?", ["cat", "dog"]))
    What is it?
    A. cat
    B. dog
    Answer with the option's letter from the given choices directly.
    """
    if not 2 <= len(choices) <= len(OPTION_LETTERS):
        raise ValueError(f"a multiple-choice question needs 2 to {len(OPTION_LETTERS)} choices, got {len(choices)}")
    lines = [question.strip()]
    lines += [f"{letter}. {choice}" for letter, choice in zip(OPTION_LETTERS, choices, strict=False)]
    return "\n".join([*lines, suffix])


_LEADING_LETTER = re.compile(r"^\s*\(?([A-Z])(?:[.):\s]|$)")


def parse_choice(prediction: str, choices: Sequence[str]) -> int | None:
    """The index of the choice a prediction names, or None.

    A leading option letter (``"B"``, ``"B."``, ``"(B) dog"``) wins; otherwise
    a prediction equal to one choice's text (case and outer spaces ignored).

        >>> parse_choice("B.", ["cat", "dog"]), parse_choice(" Dog ", ["cat", "dog"]), parse_choice("Z", ["cat", "dog"])
        (1, 1, None)
    """
    match = _LEADING_LETTER.match(prediction)
    if match:
        index = OPTION_LETTERS.index(match.group(1))
        return index if index < len(choices) else None
    wanted = prediction.strip().lower()
    for index, choice in enumerate(choices):
        if choice.strip().lower() == wanted:
            return index
    return None


def score_choices(records: Iterable[Mapping]) -> dict:
    """Choice accuracy over predictions: the share whose parsed choice is the correct one, in percent.

    Each record holds ``prediction``, ``choices``, ``correct_choice_idx`` and optionally
    ``question_id``. A prediction :func:`parse_choice` cannot read counts as wrong and in
    ``unparsed``. Returns ``{"choice_accuracy": 75.0, "count": 4, "unparsed": 1,
    "per_question": {"<question_id>": 1 or 0, ...}}``.

        >>> records = [{"question_id": 1, "prediction": "B", "choices": ["cat", "dog"], "correct_choice_idx": 1},
        ...            {"question_id": 2, "prediction": "a bird", "choices": ["cat", "dog"], "correct_choice_idx": 0}]
        >>> score_choices(records)
        {'choice_accuracy': 50.0, 'count': 2, 'unparsed': 1, 'per_question': {'1': 1, '2': 0}}
    """
    count = correct = unparsed = 0
    per_question: dict[str, int] = {}
    for record in records:
        chosen = parse_choice(record["prediction"], record["choices"])
        right = int(chosen is not None and chosen == record["correct_choice_idx"])
        count += 1
        correct += right
        unparsed += chosen is None
        if record.get("question_id") is not None:
            per_question[str(record["question_id"])] = right
    return {
        "choice_accuracy": 100.0 * correct / count if count else 0.0,
        "count": count,
        "unparsed": unparsed,
        "per_question": per_question,
    }
