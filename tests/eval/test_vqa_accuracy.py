"""Tests for llava.eval.vqa_accuracy (the front of llava.metrics.vqa) under the default
normalisation (lmms-eval's): its rules, leave-one-out scoring, ties, stemming and the shared
aggregation. Each reference's rules are pinned in tests/metrics/test_normalization.py."""

from __future__ import annotations

import pytest

from llava.eval.vqa_accuracy import (
    exact_match,
    most_common_answer,
    normalize_answer,
    score_predictions,
    stem_answer,
    vqa_accuracy,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # 1. lower-case, collapse white space, strip
        ("  Red\tAND \n Blue  ", "red and blue"),
        ("YES", "yes"),
        # 2. punctuation between word characters -> one space, elsewhere removed
        ("hot-dog", "hot dog"),
        ("black/white", "black white"),
        ("x--y", "x y"),
        ("x_y", "x y"),
        ("(dog)", "dog"),
        ("yes!", "yes"),
        ("what?", "what"),
        ('"quoted"', "quoted"),
        ("[one]", "1"),
        ("hot - dog", "hot dog"),
        ("left, right", "left right"),
        ("red,blue", "redblue"),  # lmms-eval deletes every comma before anything else
        ("1,000", "1000"),  # a thousands separator goes
        ("@home", "home"),
        ("a+b", "b"),  # the "a" left alone is an article
        ("c++", "c"),
        ("<tag>", "tag"),
        ("semi;colon", "semi colon"),
        ("back\\slash", "back slash"),
        ("x=y", "x y"),
        ("`tick`", "tick"),
        ("{brace}", "brace"),
        # characters not on the list stay
        ("50%", "50%"),
        ("at&t", "at&t"),
        ("mcdonald's", "mcdonald 's"),  # ... and splits "'s" off
        ("10:30", "10:30"),
        # periods: kept only as a decimal point
        ("3.5", "3.5"),
        (".75", ".75"),
        ("u.s.a.", "usa"),
        ("end.", "end"),
        ("dr. pepper", "dr pepper"),
        ("v.2", "v.2"),  # a period before a digit stays, whatever precedes it
        ("st. louis", "st louis"),
        # 3. number words -> digits
        ("two", "2"),
        ("none", "0"),
        ("zero", "0"),
        ("ten", "10"),
        ("one two three four five six seven eight nine", "1 2 3 4 5 6 7 8 9"),
        ("eleven", "eleven"),
        ("someone", "someone"),
        # 4. articles dropped (whole words only)
        ("the dog", "dog"),
        ("a cat", "cat"),
        ("an apple", "apple"),
        ("The Two Dogs!", "2 dogs"),
        ("theater", "theater"),
        ("banana", "banana"),
        # 5. contractions restored
        ("dont", "don't"),
        ("isnt", "isn't"),
        ("cant", "can't"),
        ("wont", "won't"),
        ("youre", "you're"),
        ("oclock", "o'clock"),
        ("couldnt've", "couldn't've"),
        ("don't", "don't"),
        ("im", "im"),  # the standard table's capitalised "Im" never matches lower-cased text
        # everything together
        ("  The Hot-Dog, isnt it?  ", "hot dog isn't it"),
        ("", ""),
        ("!!!", ""),
    ],
)
def test_normalize_answer(text, expected):
    assert normalize_answer(text) == expected


@pytest.mark.parametrize(
    ("matches", "expected"),
    [(0, 0.0), (1, 0.3), (2, 0.6), (3, 0.9), (4, 1.0), (7, 1.0), (10, 1.0)],
)
def test_leave_one_out_gives_the_standard_steps(matches, expected):
    answers = ["dog"] * matches + ["cat"] * (10 - matches)
    assert vqa_accuracy("dog", answers) == expected  # exact floats, not approximately


def test_leave_one_out_by_hand():
    # 1 match of 10: the subset leaving out the match scores 0, the nine others 1/3.
    answers = ["dog"] + ["cat"] * 9
    by_hand = sum(min(1.0, sum(a == "dog" for j, a in enumerate(answers) if j != i) / 3) for i in range(10)) / 10
    assert vqa_accuracy("dog", answers) == pytest.approx(by_hand)


def test_accuracy_normalises_both_sides():
    answers = ["The Dog!"] * 2 + ["dog"] + ["cat"] * 7
    assert vqa_accuracy("  a DOG. ", answers) == 0.9


def test_accuracy_with_other_answer_counts():
    assert vqa_accuracy("dog", ["dog"]) == 1.0
    assert vqa_accuracy("cat", ["dog"]) == 0.0
    # two answers, both match: each subset has one match -> 1/3
    assert vqa_accuracy("dog", ["dog", "dog"]) == pytest.approx(1 / 3)
    # five answers, four match: subsets with 3 matches (x4) and 4 matches (x1) -> 1.0
    assert vqa_accuracy("dog", ["dog"] * 4 + ["cat"]) == 1.0


def test_accuracy_rejects_bad_ground_truth():
    with pytest.raises(ValueError, match="at least one"):
        vqa_accuracy("dog", [])
    with pytest.raises(TypeError, match="sequence of strings"):
        vqa_accuracy("dog", "dog")
    with pytest.raises(TypeError, match="must be a string"):
        vqa_accuracy("dog", ["dog", None])


def test_most_common_answer_is_normalised():
    assert most_common_answer(["The Dog"] * 3 + ["cat"] * 2 + ["dog!"] * 2) == "dog"
    assert most_common_answer(["four"] * 7 + ["4"] * 3) == "4"


def test_most_common_answer_ties_by_raw_count_then_first_occurrence():
    # "sunny" and "clear" both 4; "Sunny" written identically 4 times beats "clear" 3 times.
    answers = ["clear", "clear", "Clear", "clear"] + ["Sunny"] * 4 + ["hot", "warm"]
    assert most_common_answer(answers) == "sunny"
    # equal counts and equal raw counts: the first to appear wins
    assert most_common_answer(["dogs"] * 5 + ["dog"] * 5) == "dogs"
    assert most_common_answer(["dog"] * 5 + ["dogs"] * 5) == "dog"
    assert most_common_answer(["b", "a"]) == "b"


def test_most_common_answer_with_stemming_groups_forms():
    answers = ["dogs"] * 3 + ["dog"] * 2 + ["cat"] * 4 + ["bird"]
    assert most_common_answer(answers) == "cat"
    assert most_common_answer(answers, stem=True) == "dog"


def test_exact_match():
    answers = ["Ford"] * 5 + ["the ford"] * 3 + ["toyota"] * 2
    assert exact_match("FORD.", answers) == 1.0
    assert exact_match("toyota", answers) == 0.0
    assert exact_match("fords", answers) == 0.0
    assert exact_match("fords", answers, stem=True) == 1.0


@pytest.mark.parametrize(
    ("word", "stem"),
    [
        ("skiing", "ski"),
        ("racing", "race"),
        ("riding", "ride"),
        ("running", "run"),
        ("swimming", "swim"),
        ("surfing", "surf"),
        ("snowboarding", "snowboard"),
        ("eating", "eat"),
        ("baking", "bake"),
        ("dancing", "dance"),
        ("cycling", "cycle"),
        ("driving", "drive"),
        ("rolling", "roll"),
        ("kayaking", "kayak"),
        ("lying", "lie"),
        ("flying", "fly"),
        ("playing", "play"),
        ("using", "use"),
        ("dogs", "dog"),
        ("berries", "berry"),
        ("boxes", "box"),
        ("benches", "bench"),
        ("dishes", "dish"),
        ("horses", "horse"),
        ("potatoes", "potato"),
        ("shoes", "shoe"),
        ("skis", "ski"),
        ("movies", "movie"),
        ("knives", "knife"),
        ("women", "woman"),
        ("buses", "bus"),
        ("glasses", "glasses"),
        # left alone
        ("building", "building"),
        ("ceiling", "ceiling"),
        ("ring", "ring"),
        ("king", "king"),
        ("tennis", "tennis"),
        ("bus", "bus"),
        ("grass", "grass"),
        ("octopus", "octopus"),
        ("species", "species"),
        ("ski", "ski"),
        ("1980s", "1980s"),
        ("don't", "don't"),
    ],
)
def test_stem_answer_words(word, stem):
    assert stem_answer(word) == stem


def test_stem_answer_phrases_and_idempotence():
    assert stem_answer("riding horses") == "ride horse"
    assert stem_answer("") == ""
    for text in ["skiing", "riding horses", "berries", "potatoes", "hot dogs", "dancing", "skis"]:
        once = stem_answer(text)
        assert stem_answer(once) == once


def test_stemming_option_on_accuracy():
    answers = ["ski"] * 3 + ["snow"] * 7  # OK-VQA v1.1 answers are stemmed
    assert vqa_accuracy("skiing", answers) == 0.0
    assert vqa_accuracy("skiing", answers, stem=True) == 0.9
    assert vqa_accuracy("Skis!", answers, stem=True) == 0.9


def test_score_predictions_aggregates_in_percent_per_category():
    records = [
        {"prediction": "dog", "answers": ["dog"] * 10, "question_type": "eight"},  # 1.0, exact
        {"prediction": "dog", "answers": ["dog"] + ["cat"] * 9, "question_type": "eight"},  # 0.3
        {
            "prediction": "ford",
            "answers": ["ford"] * 2 + ["toyota"] * 8,
            "question_type": "one",
        },  # 0.6
        {"prediction": "car", "answers": ["bus"] * 10},  # 0.0, no category
    ]
    result = score_predictions(records)
    assert result["count"] == 4
    assert result["vqa_accuracy"] == pytest.approx(100 * (1.0 + 0.3 + 0.6 + 0.0) / 4)
    assert result["exact_match"] == pytest.approx(25.0)
    assert result["per_category"] == {"eight": pytest.approx(65.0), "one": pytest.approx(60.0)}
    assert list(result["per_category"]) == ["eight", "one"]
    assert result["stem"] is False


def test_score_predictions_stem_and_empty():
    records = [{"prediction": "skiing", "answers": ["ski"] * 10, "question_type": "four"}]
    assert score_predictions(records)["vqa_accuracy"] == 0.0
    stemmed = score_predictions(iter(records), stem=True)
    assert stemmed["vqa_accuracy"] == 100.0
    assert stemmed["exact_match"] == 100.0
    assert stemmed["stem"] is True
    empty = score_predictions([])
    assert empty == {
        "vqa_accuracy": 0.0,
        "exact_match": 0.0,
        "count": 0,
        "per_category": {},
        "per_answer_type": {},
        "per_question": {},
        "normalization": "lmms-eval",
        "stem": False,
    }
