"""Test oracle: the official VQA evaluator's per-question score as of GT-Vision-Lab/VQA commit
a013f00 (PythonEvaluationTools/vqaEvaluation/vqaEval.py, 2021), restated step by step from that
file's behaviour, independently of llava/metrics. Only for the cross-check in
test_official_normalization.py; the project's scorer never imports it.

Per question: every answer and the prediction lose new lines, tabs and outer spaces. If the
answers are not all the same string, each answer and the prediction go through the
punctuation step and then the digit/article/contraction step. The score is the mean, over
the answers, of min(1, (answers other than this one equal to the prediction) / 3).
"""

from __future__ import annotations

import re

MARKS = [";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",", "?", "!"]
DIGIT_COMMA_DIGIT = re.compile(r"(\d)(,)(\d)")
PERIOD_NOT_BEFORE_DIGIT = re.compile(r"(?!<=\d)(\.)(?!\d)")
NUMBERS = dict(none="0", zero="0", one="1", two="2", three="3", four="4", five="5", six="6", seven="7", eight="8",
               nine="9", ten="10")  # fmt: skip
ARTICLES = {"a", "an", "the"}


def punctuation(text: str) -> str:
    out = text
    for mark in MARKS:
        # decided on the original text for every mark
        if mark + " " in text or " " + mark in text or DIGIT_COMMA_DIGIT.search(text):
            out = out.replace(mark, "")
        else:
            out = out.replace(mark, " ")
    return PERIOD_NOT_BEFORE_DIGIT.sub("", out, 32)  # the file passes re.UNICODE (32) as count


def digits_articles(text: str, contractions: dict[str, str]) -> str:
    words = []
    for word in text.lower().split():
        word = NUMBERS.get(word, word)
        if word not in ARTICLES:
            words.append(word)
    return " ".join(contractions.get(word, word) for word in words)


def score(prediction: str, answers: list[str], contractions: dict[str, str]) -> float:
    def clean(text: str) -> str:
        return text.replace("\n", " ").replace("\t", " ").strip()

    gts = [clean(answer) for answer in answers]
    res = clean(prediction)
    if len(set(gts)) > 1:
        gts = [digits_articles(punctuation(answer), contractions) for answer in gts]
        res = digits_articles(punctuation(res), contractions)
    accs = []
    for index in range(len(gts)):
        others = gts[:index] + gts[index + 1 :]
        accs.append(min(1.0, sum(1 for other in others if other == res) / 3))
    return sum(accs) / len(accs)
