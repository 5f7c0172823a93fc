"""Multiple-choice questions: the lettered prompt, reading a letter back, choice accuracy.

The prompt follows upstream LLaVA's multiple-choice evaluation (MMBench,
ScienceQA): the question, one ``"A. option"`` line per choice, then the suffix
``"Answer with the option's letter from the given choices directly."``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["MULTIPLE_CHOICE_SUFFIX", "OPTION_LETTERS", "choice_prompt", "parse_choice"]

OPTION_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
MULTIPLE_CHOICE_SUFFIX = "Answer with the option's letter from the given choices directly."


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
    lines += [f"{letter}. {choice}" for letter, choice in zip(OPTION_LETTERS, choices)]
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
