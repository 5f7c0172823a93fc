"""The two VQA answer normalisations that published numbers use, each rule for rule as its reference.

* ``"lmms-eval"`` (the default): lmms-eval's ``EvalAIAnswerProcessor`` (the
  EvalAI / MMF processor; LLaVA's ``m4c_evaluator`` has the same one), applied
  to the prediction and to every ground-truth answer, as lmms-eval's ``ok_vqa``
  task does. LLaVA-family OK-VQA numbers come from it.
* ``"official"``: the GT-Vision-Lab/VQA evaluator
  (``PythonEvaluationTools/vqaEvaluation/vqaEval.py``) as people download it
  today (commit a013f00, 2021), quirks included. Prediction and answers lose
  ``\n``/``\t`` and outer spaces; then, only when a question's answers are not
  all the same string, both get punctuation, number words, articles and
  contractions. When they are all alike, the prediction is compared as it is:
  "Yes" against ten "yes" scores 0.
* ``"official-2015"``: the same file's 2015 beta (commit 07aecec, "Beta v0.9"):
  the prediction is always normalised, the answers get only the punctuation step
  (and nothing when all alike), with a different punctuation list and
  typographic-apostrophe contractions. Kept to reproduce old numbers; never the
  meaning of ``official``.

The rules, with a hand-made example each, are in docs/EVALUATION.md
("Normalisations"); tests/metrics/test_normalization.py pins every one.

    >>> normalize("The Two Dogs!", "lmms-eval"), normalize("The Two Dogs!", "official-2015")
    ('2 dogs', '2 dogs!')
    >>> prepare("Yes", ["yes"] * 2, "official"), prepare("Yes", ["yes", "Yes."], "official")
    (('Yes', ['yes', 'yes']), ('yes', ['yes', 'yes']))
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

__all__ = [
    "DEFAULT_NORMALIZATION",
    "NORMALIZATIONS",
    "check_normalization",
    "normalize",
    "official_2015_ground_truth",
    "official_ground_truth",
    "official_punctuation",
    "prepare",
]

NORMALIZATIONS = ("lmms-eval", "official", "official-2015")
DEFAULT_NORMALIZATION = "lmms-eval"

# --------------------------------------------------------------------------------------------
# Tables (facts from both references' source).
# --------------------------------------------------------------------------------------------

_NUMBER_WORDS = {
    "none": "0",
    "zero": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
    "ten": "10",
}
_ARTICLES = frozenset({"a", "an", "the"})

# lmms-eval's contraction table (ASCII apostrophes), in its order: word -> replacement.
# Keys that can never match (capitalised ones after lower-casing, identity entries) are
# kept: they are part of the table, and "somebody'd" -> "somebodyd" removes an apostrophe.
_LMMS_EVAL_CONTRACTION_PAIRS = """
aint ain't  arent aren't  cant can't  couldve could've  couldnt couldn't
couldn'tve couldn't've  couldnt've couldn't've  didnt didn't  doesnt doesn't  dont don't
hadnt hadn't  hadnt've hadn't've  hadn'tve hadn't've  hasnt hasn't  havent haven't  hed he'd
hed've he'd've  he'dve he'd've  hes he's  howd how'd  howll how'll  hows how's  Id've I'd've
I'dve I'd've  Im I'm  Ive I've  isnt isn't  itd it'd  itd've it'd've  it'dve it'd've  itll it'll
let's let's  maam ma'am  mightnt mightn't  mightnt've mightn't've  mightn'tve mightn't've
mightve might've  mustnt mustn't  mustve must've  neednt needn't  notve not've  oclock o'clock
oughtnt oughtn't  ow's'at 'ow's'at  'ows'at 'ow's'at  'ow'sat 'ow's'at  shant shan't
shed've she'd've  she'dve she'd've  she's she's  shouldve should've  shouldnt shouldn't
shouldnt've shouldn't've  shouldn'tve shouldn't've  somebody'd somebodyd
somebodyd've somebody'd've  somebody'dve somebody'd've  somebodyll somebody'll
somebodys somebody's  someoned someone'd  someoned've someone'd've  someone'dve someone'd've
someonell someone'll  someones someone's  somethingd something'd  somethingd've something'd've
something'dve something'd've  somethingll something'll  thats that's  thered there'd
thered've there'd've  there'dve there'd've  therere there're  theres there's  theyd they'd
theyd've they'd've  they'dve they'd've  theyll they'll  theyre they're  theyve they've
twas 'twas  wasnt wasn't  wed've we'd've  we'dve we'd've  weve we've  werent weren't
whatll what'll  whatre what're  whats what's  whatve what've  whens when's  whered where'd
wheres where's  whereve where've  whod who'd  whod've who'd've  who'dve who'd've  wholl who'll
whos who's  whove who've  whyll why'll  whyre why're  whys why's  wont won't  wouldve would've
wouldnt wouldn't  wouldnt've wouldn't've  wouldn'tve wouldn't've  yall y'all  yall'll y'all'll
y'allll y'all'll  yall'd've y'all'd've  y'alld've y'all'd've  y'all'dve y'all'd've  youd you'd
youd've you'd've  you'dve you'd've  youll you'll  youre you're  youve you've
"""
_WORDS = _LMMS_EVAL_CONTRACTION_PAIRS.split()
LMMS_EVAL_CONTRACTIONS: dict[str, str] = dict(zip(_WORDS[0::2], _WORDS[1::2], strict=True))

# The official evaluator today (a013f00) has the same table, entry for entry, in ASCII.
OFFICIAL_CONTRACTIONS: dict[str, str] = dict(LMMS_EVAL_CONTRACTIONS)
# Its 2015 beta (07aecec) wrote the entries with the typographic apostrophe (U+2019), except
# two keys and eight values that keep the ASCII one. So there "dont" becomes "don’t" (which
# matches no answer: the ASCII "'" of an answer is a punctuation mark there), while "weve"
# becomes "we've".
_CURLY = "\u2019"
_OFFICIAL_2015_ASCII_KEYS = frozenset({"couldn'tve", "hadn'tve"})
_OFFICIAL_2015_ASCII_VALUES = frozenset({"aint", "arent", "cant", "couldve", "couldnt", "weve", "wheres", "whove"})
OFFICIAL_2015_CONTRACTIONS: dict[str, str] = {
    (key if key in _OFFICIAL_2015_ASCII_KEYS else key.replace("'", _CURLY)): (
        value if key in _OFFICIAL_2015_ASCII_VALUES else value.replace("'", _CURLY)
    )
    for key, value in LMMS_EVAL_CONTRACTIONS.items()
}

# Punctuation marks (one character each), in each reference's order. lmms-eval's and today's
# official list are the same; the 2015 beta's has ":" and "'" and lacks "-", "!", "{" and "}".
LMMS_EVAL_PUNCTUATION = tuple(';/[]"{}()=+\\_-><@`,?!')
OFFICIAL_PUNCTUATION = LMMS_EVAL_PUNCTUATION
OFFICIAL_2015_PUNCTUATION = tuple(";:/'[]\"()=+\\_><@`,?")

# A comma between digits anywhere in the text switches every mark from "replace by a space"
# to "delete". The official pattern is digit,digit; lmms-eval's is digit,(one or more),digit.
_OFFICIAL_DIGIT_COMMA = re.compile(r"\d,\d")
_LMMS_EVAL_DIGIT_COMMA = re.compile(r"(?<=\d),+(?=\d)")
# Both references strip a period unless a digit follows it. Their pattern opens with
# "(?!<=\d)", a look-ahead (not a look-behind) that always holds in front of a period,
# so "3.5" keeps its period and so does "u.s.a.5", while "5." loses it.
_PERIOD = re.compile(r"\.(?!\d)")
# ... and both pass re.UNICODE (32) where re.sub takes its count: at most 32 periods go.
PERIODS_STRIPPED = 32


# --------------------------------------------------------------------------------------------
# Steps.
# --------------------------------------------------------------------------------------------


def _punctuation(text: str, marks: Sequence[str], digit_comma: re.Pattern[str]) -> str:
    """Both references' punctuation step: decided per mark over the whole string.

    A mark is deleted everywhere when it touches a space somewhere in the text (``"p "``
    or ``" p"``) or when the text holds a digit-comma-digit; otherwise every occurrence
    becomes a space. Then periods not followed by a digit go (the first 32 of them).
    """
    delete_every_mark = digit_comma.search(text) is not None
    result = text
    for mark in marks:
        if delete_every_mark or mark + " " in text or " " + mark in text:
            result = result.replace(mark, "")
        else:
            result = result.replace(mark, " ")
    return _PERIOD.sub("", result, count=PERIODS_STRIPPED)


def _digits_articles_contractions(text: str, contractions: dict[str, str]) -> str:
    """Lower-case, split on white space, number words -> digits, drop articles, restore contractions."""
    words = [_NUMBER_WORDS.get(word, word) for word in text.lower().split()]
    return " ".join(contractions.get(word, word) for word in words if word not in _ARTICLES)


def official_punctuation(text: str) -> str:
    """The official evaluator's punctuation step alone (today's, a013f00).

    >>> official_punctuation("hot-dog, 1,000 o'clock"), official_punctuation("hot-dog")
    ("hotdog 1000 o'clock", 'hot dog')
    """
    return _punctuation(text, OFFICIAL_PUNCTUATION, _OFFICIAL_DIGIT_COMMA)


def official_2015_punctuation(text: str) -> str:
    """The 2015 beta's punctuation step alone (what its ground-truth answers get).

    >>> official_2015_punctuation("hot-dog, 1,000 o'clock"), official_2015_punctuation("don't")
    ('hot-dog 1000 oclock', 'don t')
    """
    return _punctuation(text, OFFICIAL_2015_PUNCTUATION, _OFFICIAL_DIGIT_COMMA)


def _white_space(text: str) -> str:
    """What every answer gets in official mode: new lines and tabs become spaces, outer spaces go."""
    return text.replace("\n", " ").replace("\t", " ").strip()


@functools.lru_cache(maxsize=1 << 16)
def _lmms_eval(text: str) -> str:
    # EvalAIAnswerProcessor: its word_tokenize step first (lower-case, delete every "," and
    # "?", "'s" -> " 's", strip); commas are gone before the digit-comma switch looks.
    text = text.lower().replace(",", "").replace("?", "").replace("'s", " 's").strip()
    text = text.replace("\n", " ").replace("\t", " ").strip()
    text = _punctuation(text, LMMS_EVAL_PUNCTUATION, _LMMS_EVAL_DIGIT_COMMA)
    return _digits_articles_contractions(text, LMMS_EVAL_CONTRACTIONS)


@functools.lru_cache(maxsize=1 << 16)
def _official(text: str) -> str:
    # Today's evaluator on a question whose answers differ: prediction and answers alike.
    return _digits_articles_contractions(official_punctuation(_white_space(text)), OFFICIAL_CONTRACTIONS)


@functools.lru_cache(maxsize=1 << 16)
def _official_2015(text: str) -> str:
    # The 2015 beta's treatment of a prediction (case is left to the last step).
    text = _white_space(text)
    return _digits_articles_contractions(official_2015_punctuation(text), OFFICIAL_2015_CONTRACTIONS)


def check_normalization(normalization: str) -> str:
    """``normalization`` if it is one of :data:`NORMALIZATIONS`, else a ValueError naming them."""
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"unknown normalization {normalization!r}; use one of {', '.join(NORMALIZATIONS)}")
    return normalization


def normalize(text: str, normalization: str = DEFAULT_NORMALIZATION) -> str:
    """A text as the reference normalises it where it normalises at all.

    lmms-eval: every prediction and answer. official: prediction and answers of a question
    whose answers differ (see :func:`prepare`). official-2015: every prediction.

    >>> normalize("1,000 Dogs?"), normalize("1,000 Dogs?", "official")
    ('1000 dogs', '1000 dogs')
    """
    normalization = check_normalization(normalization)
    if normalization == "official":
        return _official(text)
    if normalization == "official-2015":
        return _official_2015(text)
    return _lmms_eval(text)


def official_ground_truth(answers: Sequence[str]) -> list[str]:
    """A question's answers as today's official evaluator compares them.

    New lines, tabs and outer spaces always go; the rest of the normalisation only when the
    answers are not all the same string (then the prediction gets it too).
    """
    stripped = [_white_space(answer) for answer in answers]
    if len(set(stripped)) > 1:
        return [_official(answer) for answer in stripped]
    return stripped


def official_2015_ground_truth(answers: Sequence[str]) -> list[str]:
    """A question's answers as the 2015 beta compared them.

    Only the punctuation step, and only when the answers are not all the same string;
    no lower-casing, no number words, no articles.
    """
    if len(set(answers)) > 1:
        return [official_2015_punctuation(answer) for answer in answers]
    return list(answers)


def prepare(
    prediction: str, answers: Sequence[str], normalization: str = DEFAULT_NORMALIZATION
) -> tuple[str, list[str]]:
    """The prediction and the answers in the form the reference compares them (strings equal = match).

    >>> prepare("The dog", ["dog"] * 10, "official")[0], prepare("The dog", ["dog", "a dog"], "official")[0]
    ('The dog', 'dog')
    """
    normalization = check_normalization(normalization)
    if normalization == "official":
        unanimous = len({_white_space(answer) for answer in answers}) <= 1
        return (_white_space(prediction) if unanimous else _official(prediction)), official_ground_truth(answers)
    if normalization == "official-2015":
        return _official_2015(prediction), official_2015_ground_truth(answers)
    return _lmms_eval(prediction), [_lmms_eval(answer) for answer in answers]
