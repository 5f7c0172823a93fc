"""``--normalization official`` reproduces the official VQA evaluator as people download it
today (GT-Vision-Lab/VQA vqaEval.py at commit a013f00), question by question.

The fixed cases were worked out by hand from that file's evaluate(): when all of a question's
answers are the same string, the prediction is compared after only new-line/tab -> space and
strip(); otherwise prediction and answers both get processPunctuation and processDigitArticle.
The randomised cross-check compares with an independent restatement (vqaeval_a013.py) on every
answer-set shape OK-VQA has, and shows that it tells the 2015 beta's behaviour apart.
"""

from __future__ import annotations

import random

import pytest
from vqaeval_a013 import score as reference_score

from llava.metrics.normalization import LMMS_EVAL_CONTRACTIONS, OFFICIAL_CONTRACTIONS
from llava.metrics.vqa import score_predictions, vqa_accuracy


@pytest.mark.parametrize(
    ("prediction", "answers", "expected"),
    [
        # the table: unanimous answers, prediction compared as written
        ("Yes", ["yes"] * 10, 0.0),
        ("yes.", ["yes"] * 10, 0.0),
        ("the dog", ["dog"] * 10, 0.0),
        ("Two", ["Two"] * 10, 1.0),
        # ... only outer white space, new lines and tabs go
        ("  the dog\n", ["the dog"] * 10, 1.0),
        ("Red", ["red"] * 10, 0.0),
        # unanimous with punctuation: no punctuation step on either side
        ("hot-dog", ["hot-dog"] * 10, 1.0),
        ("hot dog", ["hot-dog"] * 10, 0.0),
        # unanimous with a number word: no number mapping
        ("2", ["two"] * 10, 0.0),
        ("two", ["two"] * 10, 1.0),
        # two distinct answers: both sides fully normalised
        ("Yes", ["yes"] * 5 + ["yes."] * 5, 1.0),
        ("The Two", ["2"] * 3 + ["three"] * 7, 0.9),
        ("hot-dog", ["hot dog"] * 2 + ["hotdog"] * 8, 0.6),  # "-" is punctuation now: "hot dog"
        ("dont", ["don't"] * 4 + ["do not"] * 6, 1.0),  # ASCII contractions, "'" is not punctuation
        # two answers, one matching: leave out "dog" -> 0, leave out "cat" -> 1/3
        ("dog", ["dog", "cat"], 1 / 6),
    ],
)
def test_official_rows_derived_from_the_evaluator(prediction, answers, expected):
    assert vqa_accuracy(prediction, answers, normalization="official") == pytest.approx(expected)
    assert reference_score(prediction, answers, OFFICIAL_CONTRACTIONS) == pytest.approx(expected)


def test_a_single_answer_is_exact_match_here_and_zero_in_the_evaluator():
    assert vqa_accuracy("dog", ["dog"], normalization="official") == 1.0  # documented deviation
    assert reference_score("dog", ["dog"], OFFICIAL_CONTRACTIONS) == 0.0


def test_todays_table_is_the_ascii_one():
    assert OFFICIAL_CONTRACTIONS == LMMS_EVAL_CONTRACTIONS and OFFICIAL_CONTRACTIONS["dont"] == "don't"


WORDS = ["yes", "no", "dog", "the dog", "Two", "two", "2", "hot-dog", "hot dog", "Ben & Jerry's", "don't", "dont",
         "red", "Red", "a cat", "1,000", "1000", "3.5", "U.S.A.", "yes.", "(yes)", "New York!", "o'clock", "10:30",
         "it's", "its", "cats", "none", "0", "an apple", " yes ", "yes\n", "Y'all", "we've", "{a}"]  # fmt: skip


def answer_sets(rng: random.Random, count: int):
    """Every shape OK-VQA's answers take: unanimous, five written twice, a few distinct, many distinct."""
    shapes = ["unanimous", "five-twice", "two", "few", "many"]
    for index in range(count):
        shape = shapes[index % len(shapes)]
        if shape == "unanimous":
            answers = [rng.choice(WORDS)] * 10
        elif shape == "five-twice":
            answers = [rng.choice(WORDS) for _ in range(5)] * 2
        elif shape == "two":
            first, second = rng.sample(WORDS, 2)
            answers = [first] * rng.randint(1, 9)
            answers += [second] * (10 - len(answers))
        elif shape == "few":
            answers = [rng.choice(WORDS[:6]) for _ in range(10)]
        else:
            answers = [rng.choice(WORDS) for _ in range(10)]
        prediction = rng.choice(WORDS + answers)
        yield prediction, answers


def _differences(normalization: str, questions: int = 3000) -> list:
    rng = random.Random(19)
    return [
        (prediction, answers)
        for prediction, answers in answer_sets(rng, questions)
        if vqa_accuracy(prediction, answers, normalization=normalization)
        != pytest.approx(reference_score(prediction, answers, OFFICIAL_CONTRACTIONS))
    ]


def test_randomised_cross_check_agrees_on_every_question():
    assert _differences("official") == []


def test_the_cross_check_finds_the_2015_beta_different():
    # what "official" meant before: the check must be able to see that
    assert len(_differences("official-2015")) > 300


def test_per_category_is_the_evaluators_mean_per_question_type():
    rng = random.Random(7)
    records = []
    for index, (prediction, answers) in enumerate(answer_sets(rng, 200)):
        records.append(
            {"question_id": index, "prediction": prediction, "answers": answers,
             "question_type": f"type{index % 3}", "answer_type": "other" if index % 2 else "number"}
        )  # fmt: skip
    result = score_predictions(records, normalization="official")
    for kind, key in (("question_type", "per_category"), ("answer_type", "per_answer_type")):
        groups: dict[str, list[float]] = {}
        for record in records:
            groups.setdefault(record[kind], []).append(
                reference_score(record["prediction"], record["answers"], OFFICIAL_CONTRACTIONS)
            )
        expected = {name: round(100 * sum(values) / len(values), 4) for name, values in groups.items()}
        assert {name: round(value, 4) for name, value in result[key].items()} == expected
