"""The lmms-eval and official-2015 normalisations (llava/metrics/normalization.py), rule by rule.

Every expected value below was derived by hand from the reference's source:
GT-Vision-Lab/VQA PythonEvaluationTools/vqaEvaluation/vqaEval.py at its 2015 beta, commit 07aecec (``official-2015``:
processPunctuation, processDigitArticle, and the ground-truth branch of evaluate) and
lmms-eval's EvalAIAnswerProcessor with its ok_vqa process_results (``lmms-eval``).
"""

from __future__ import annotations

import doctest

import pytest

import llava.metrics.normalization as normalization_module
import llava.metrics.vqa as vqa_module
from llava.metrics.normalization import (
    LMMS_EVAL_CONTRACTIONS,
    OFFICIAL_2015_CONTRACTIONS,
    normalize,
    official_2015_ground_truth,
    official_2015_punctuation,
)
from llava.metrics.vqa import exact_match, most_common_answer, score_predictions, vqa_accuracy

CURLY = "\u2019"


@pytest.mark.parametrize(
    ("text", "official", "lmms_eval"),
    [
        # official: "-", "!", "{", "}" are not punctuation; lmms-eval: ":" and "'" are not
        ("Hot-Dog", "hot-dog", "hot dog"),
        ("hot dog!", "hot dog!", "hot dog"),
        ("{a}", "{a}", ""),  # lmms-eval: braces -> spaces, then "a" is an article
        ("o'clock", "o clock", "o'clock"),
        ("10:30", "10 30", "10:30"),
        # a mark is decided once for the whole string: touching a space anywhere -> deleted everywhere
        ("black/white / grey", "blackwhite grey", "blackwhite grey"),
        ("red/blue, 15", "red blue 15", "red blue 15"),
        # official: a digit,digit comma anywhere switches every mark to deletion;
        # lmms-eval deletes every comma first, so its switch never fires
        ("red/blue, 1,5", "redblue 15", "red blue 15"),
        ("1,000 (approx)", "1000 approx", "1000 approx"),
        # lmms-eval also deletes "?" first and splits "'s" off
        ("dog's", "dog s", "dog 's"),
        ("let's go", "let s go", "let 's go"),
        ("what?", "what", "what"),
        # periods: removed unless a digit follows, whatever precedes
        ("u.s.a.", "usa", "usa"),
        ("3.5", "3.5", "3.5"),
        ("5.", "5", "5"),
        ("v.2", "v.2", "v.2"),
        ("e.g. 5.5.", "eg 5.5", "eg 5.5"),
        # ... but at most 32 of them (re.UNICODE passed as re.sub's count)
        ("a." * 40, "a" * 33 + ".a" * 7 + ".", "a" * 33 + ".a" * 7 + "."),
        # number words, articles, case, white space
        ("The Two Dogs!", "2 dogs!", "2 dogs"),
        ("  None\tof THE\nten ", "0 of 10", "0 of 10"),
        ("eleven", "eleven", "eleven"),
        ("Im", "im", "im"),  # the tables' capitalised keys never match
        # contractions: official writes most with U+2019, and its "'" is punctuation
        ("dont", f"don{CURLY}t", "don't"),
        ("isnt", f"isn{CURLY}t", "isn't"),
        ("weve", "we've", "we've"),
        ("whove", "who've", "who've"),
        ("don't", "don t", "don't"),
        ("couldn'tve", "couldn tve", "couldn't've"),
        ("somebody'd", "somebody d", "somebodyd"),
    ],
)
def test_prediction_normalisation(text, official, lmms_eval):
    assert normalize(text, "official-2015") == official
    assert normalize(text, "lmms-eval") == lmms_eval
    assert normalize(text) == lmms_eval  # the default


def test_official_2015_ground_truth_gets_only_punctuation_and_only_when_answers_differ():
    # all ten the same string: untouched, not even lower-cased
    assert official_2015_ground_truth(["Yes."] * 10) == ["Yes."] * 10
    # otherwise punctuation only: no case, no number words, no articles, no strip
    assert official_2015_ground_truth(["The Two", "(yes)", "what?", "dog's"]) == ["The Two", " yes ", "what ", "dog s"]
    assert official_2015_punctuation("hot-dog, 1,000 o'clock") == "hot-dog 1000 oclock"


@pytest.mark.parametrize(
    ("prediction", "answers", "official", "lmms_eval"),
    [
        # identical answer lists: official compares with the raw strings
        ("Yes", ["Yes"] * 10, 0.0, 1.0),
        ("yes", ["Yes"] * 9 + ["yes"], 0.3, 1.0),
        # number words are mapped in the prediction only
        ("two", ["two"] * 4 + ["three"] * 6, 0.0, 1.0),
        ("two", ["2"] * 4 + ["three"] * 6, 1.0, 1.0),
        # the ground truth keeps the spaces its punctuation leaves
        ("yes", ["(yes)"] * 3 + ["no"] * 7, 0.0, 0.9),
        # the same rules on both sides
        ("Dog's", ["dog's"] * 3 + ["dogs"] * 7, 0.9, 0.9),
        ("hot-dog", ["hot dog"] * 2 + ["hotdog"] * 8, 0.0, 0.6),
    ],
)
def test_accuracy_under_each_normalisation(prediction, answers, official, lmms_eval):
    assert vqa_accuracy(prediction, answers, normalization="official-2015") == official
    assert vqa_accuracy(prediction, answers, normalization="lmms-eval") == lmms_eval


def test_contraction_tables():
    assert len(LMMS_EVAL_CONTRACTIONS) == len(OFFICIAL_2015_CONTRACTIONS) == 120
    assert LMMS_EVAL_CONTRACTIONS["somebody'd"] == "somebodyd"
    assert OFFICIAL_2015_CONTRACTIONS[f"somebody{CURLY}d"] == "somebodyd"
    assert OFFICIAL_2015_CONTRACTIONS["couldn'tve"] == f"couldn{CURLY}t{CURLY}ve"  # an ASCII key
    assert OFFICIAL_2015_CONTRACTIONS["wheres"] == "where's"  # an ASCII value
    assert OFFICIAL_2015_CONTRACTIONS["twas"] == f"{CURLY}twas"


def test_exact_match_and_target_follow_the_normalisation():
    answers = ["Two"] * 10
    assert most_common_answer(answers) == "2"
    assert most_common_answer(answers, normalization="official-2015") == "Two"
    assert exact_match("two", answers) == 1.0
    assert exact_match("two", answers, normalization="official-2015") == 0.0


def test_score_predictions_names_the_normalisation_and_scores_per_question():
    records = [
        {"question_id": 7, "prediction": "two", "answers": ["two"] * 4 + ["three"] * 6, "question_type": "one"},
        {"question_id": "8", "prediction": "yes", "answers": ["yes"] * 10, "question_type": "two"},
    ]
    official = score_predictions(records, normalization="official-2015")
    assert official["normalization"] == "official-2015"
    assert official["per_question"] == {"7": 0.0, "8": 1.0}
    assert official["vqa_accuracy"] == 50.0
    lmms_eval = score_predictions(records)
    assert lmms_eval["normalization"] == "lmms-eval" and lmms_eval["vqa_accuracy"] == 100.0
    with pytest.raises(ValueError, match="unknown normalization 'vqa'; use one of lmms-eval, official"):
        score_predictions(records, normalization="vqa")


@pytest.mark.parametrize("module", [normalization_module, vqa_module])
def test_docstring_examples(module):
    assert doctest.testmod(module).failed == 0
