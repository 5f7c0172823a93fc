"""Multiple choice (llava/metrics/choices.py): upstream's lettered prompt, reading letters back,
choice accuracy with unparsed answers counted wrong."""

from __future__ import annotations

import doctest

import pytest

import llava.metrics.choices as choices_module
from llava.metrics.choices import MULTIPLE_CHOICE_SUFFIX, choice_prompt, parse_choice, score_choices

CHOICES = ["bat", "ball", "glove", "cap"]


def test_prompt_uses_upstreams_suffix():
    assert MULTIPLE_CHOICE_SUFFIX == "Answer with the option's letter from the given choices directly."
    assert choice_prompt(" What? ", CHOICES).splitlines() == [
        "What?",
        "A. bat",
        "B. ball",
        "C. glove",
        "D. cap",
        MULTIPLE_CHOICE_SUFFIX,
    ]


@pytest.mark.parametrize(
    ("prediction", "expected"),
    [("C", 2), ("C.", 2), ("(C) glove", 2), ("c", None), (" Glove ", 2), ("E", None), ("a glove", None), ("", None)],
)
def test_parse_choice(prediction, expected):
    assert parse_choice(prediction, CHOICES) == expected


def test_score_choices_counts_unparsed_as_wrong():
    records = [
        {"question_id": "q1", "prediction": "C", "choices": CHOICES, "correct_choice_idx": 2},
        {"question_id": "q2", "prediction": "A", "choices": CHOICES, "correct_choice_idx": 2},
        {"question_id": "q3", "prediction": "maybe", "choices": CHOICES, "correct_choice_idx": 0},
        {"question_id": "q4", "prediction": "cap", "choices": CHOICES, "correct_choice_idx": 3},
    ]
    assert score_choices(records) == {
        "choice_accuracy": 50.0,
        "count": 4,
        "unparsed": 1,
        "per_question": {"q1": 1, "q2": 0, "q3": 0, "q4": 1},
    }
    assert score_choices([]) == {"choice_accuracy": 0.0, "count": 0, "unparsed": 0, "per_question": {}}


def test_docstring_examples():
    assert doctest.testmod(choices_module).failed == 0
