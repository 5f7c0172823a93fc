"""VQA accuracy: leave-one-out scoring of a prediction against its human answers, and aggregation.

The one implementation of the metric in the project: the converters pick
training targets with it, the evaluation between epochs scores with it and
``python -m llava.eval.eval_vqa`` scores answer files with it, so all give
identical numbers. Answers are compared after one of the normalisations of
:mod:`llava.metrics.normalization` (``"lmms-eval"`` by default, ``"official"``
or ``"official-2015"``), each identical question by question to its reference tool.

Metric (docs/EVALUATION.md). For a prediction p and ground-truth answers
g1..gn (n = 10 in OK-VQA and A-OKVQA), normalised::

    acc(p) = mean over i of min(1, #{j != i : g_j == p} / 3)

With 10 answers, 1, 2, 3 and 4 or more matching answers give 0.3, 0.6, 0.9
and 1.0. Dataset accuracy is the mean over questions, reported in percent.

    >>> vqa_accuracy("Two", ["2"] * 3 + ["two dogs"] * 7)
    0.9
    >>> vqa_accuracy("Two", ["2"] * 3 + ["two dogs"] * 7, normalization="official")
    0.9
    >>> vqa_accuracy("Yes", ["yes"] * 10, normalization="official")  # all alike: compared as written
    0.0
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

from llava.metrics.normalization import (
    DEFAULT_NORMALIZATION,
    check_normalization,
    normalize,
    prepare,
)

__all__ = [
    "DEFAULT_NORMALIZATION",
    "exact_match",
    "most_common_answer",
    "normalize_answer",
    "score_predictions",
    "stem_answer",
    "training_target",
    "vqa_accuracy",
]


def normalize_answer(text: str, normalization: str = DEFAULT_NORMALIZATION) -> str:
    """One answer or prediction, normalised (lmms-eval's processor by default).

    >>> normalize_answer("  The Hot-Dog, isnt it?  ")
    "hot dog isn't it"
    """
    return normalize(text, normalization)


# --------------------------------------------------------------------------
# Stemming (optional): lemmatise -ing verbs, singularise plural nouns.
# --------------------------------------------------------------------------

_VOWELS = frozenset("aeiou")

_IRREGULAR_PLURALS = {
    "men": "man",
    "women": "woman",
    "children": "child",
    "feet": "foot",
    "teeth": "tooth",
    "geese": "goose",
    "mice": "mouse",
    "oxen": "ox",
    "knives": "knife",
    "wives": "wife",
    "lives": "life",
    "leaves": "leaf",
    "loaves": "loaf",
    "wolves": "wolf",
    "shelves": "shelf",
    "halves": "half",
    "calves": "calf",
    "thieves": "thief",
    "scarves": "scarf",
    "elves": "elf",
    "buses": "bus",
    "viruses": "virus",
    "cactuses": "cactus",
    "cacti": "cactus",
    "fungi": "fungus",
    "lenses": "lens",
    "quizzes": "quiz",
    "canoes": "canoe",
}

# Words that end in s but are not plurals to strip (or are kept whole).
_NOT_PLURAL = frozenset(
    """
    news series species scissors clothes pants jeans shorts trousers glasses
    christmas texas atlas canvas alias kansas arkansas vegas bias pajamas pyjamas
    gas yes this his its was has does is us as plus thus always perhaps sometimes
    mathematics physics economics politics athletics gymnastics aerobics olympics
    diabetes herpes measles rabies mumps
    """.split()
)

# Plurals of nouns in -i, which the "-is is not a plural" rule (tennis, iris) would miss.
_I_PLURALS = frozenset(
    """
    skis kiwis taxis bikinis martinis safaris salamis tsunamis zucchinis alibis
    yetis wikis emojis
    """.split()
)

# Nouns in -ie whose plural is -ies (movie -> movies, not movy).
_IE_PLURALS = frozenset(
    """
    movies cookies zombies brownies smoothies calories hippies goalies rookies
    selfies veggies birdies beanies collies hoodies genies prairies aussies
    groupies newbies techies yuppies pixies sweeties pies ties lies dies
    """.split()
)

# Words in -ing that are nouns (or names), not verb forms to lemmatise.
_ING_NOUNS = frozenset(
    """
    building ceiling morning evening wedding clothing painting pudding icing
    frosting topping stuffing dumpling sibling duckling seedling awning railing
    siding bedding lightning nothing something anything everything during
    viking boeing beijing wyoming sterling darjeeling herring shilling earring
    offspring ring king thing string spring wing swing sling sting
    """.split()
)


def _is_consonant(word: str, index: int) -> bool:
    """Whether word[index] is a consonant; y counts as a vowel after a consonant."""
    letter = word[index]
    if letter in _VOWELS:
        return False
    if letter == "y":
        return index == 0 or not _is_consonant(word, index - 1)
    return True


def _measure(stem: str) -> int:
    """The number of vowel-consonant sequences in a word (Porter's m)."""
    pattern = "".join("c" if _is_consonant(stem, i) else "v" for i in range(len(stem)))
    return len(re.findall("v+c+", pattern))


def _singularise(word: str) -> str:
    """Plural noun -> singular by rule (berries -> berry, boxes -> box, dogs -> dog)."""
    if word in _IRREGULAR_PLURALS:
        return _IRREGULAR_PLURALS[word]
    if word in _I_PLURALS:
        return word[:-1]
    if len(word) <= 3 or word in _NOT_PLURAL or not word.endswith("s"):
        return word
    if word.endswith(("ss", "us", "is", "'s")):
        return word
    if word.endswith("ies"):
        return word[:-1] if word in _IE_PLURALS else word[:-3] + "y"
    if word.endswith("shoes"):
        return word[:-1]
    if word.endswith("oes") and len(word) > 5:
        return word[:-2]  # potatoes -> potato, heroes -> hero
    if word.endswith(("sses", "xes", "zzes", "shes")):
        return word[:-2]  # glasses -> glass, boxes -> box, dishes -> dish
    if word.endswith("ches"):
        # benches -> bench, peaches -> peach; headaches -> headache
        return word[:-1] if word.endswith("aches") and not word.endswith("eaches") else word[:-2]
    return word[:-1]  # dogs -> dog, horses -> horse, gloves -> glove


def _lemmatise_ing(word: str) -> str:
    """Verb form in -ing -> base form by rule (skiing -> ski, riding -> ride, running -> run)."""
    if not word.endswith("ing") or word in _ING_NOUNS:
        return word
    if word == "using":
        return "use"  # the one common verb whose stem is too short for the e rule
    stem = word[:-3]
    if len(stem) < 2 or not any(not _is_consonant(stem, i) for i in range(len(stem))):
        return word  # ring, king, thing: no vowel left, not a verb form
    if len(stem) == 2 and stem.endswith("y") and _is_consonant(stem, 0):
        return stem[0] + "ie"  # lying -> lie, dying -> die, tying -> tie
    if stem[-1] == stem[-2] and _is_consonant(stem, len(stem) - 1) and stem[-1] not in "lsz":
        return stem[:-1]  # running -> run, swimming -> swim (but rolling -> roll)
    if stem.endswith("v") or re.search(r"([nr]c|dg|[rl]g|[bcdfgkpstz]l)$", stem):
        return stem + "e"  # driving -> drive, dancing -> dance, cycling -> cycle
    if (
        _measure(stem) == 1
        and len(stem) >= 3
        and _is_consonant(stem, len(stem) - 1)
        and not _is_consonant(stem, len(stem) - 2)
        and _is_consonant(stem, len(stem) - 3)
        and stem[-1] not in "wxy"
    ):
        return stem + "e"  # riding -> ride, hiking -> hike, baking -> bake
    return stem


def stem_answer(text: str) -> str:
    """Stem a normalised answer word by word: lemmatise -ing verbs, singularise plural nouns.

    A small rule-based stemmer (no nltk) in the spirit of the OK-VQA v1.1
    answers, which are stemmed: ``skiing`` -> ``ski``, ``riding horses`` ->
    ``ride horse``, ``berries`` -> ``berry``, ``boxes`` -> ``box``. Words that
    are not purely alphabetic (numbers, contractions) are left alone, and short
    lists of exceptions keep nouns such as ``building``, ``movies`` -> ``movie``
    and ``glasses`` right. Stemming an already stemmed answer leaves it as it is
    for the common cases, so it is applied to the prediction and to the answers
    alike when the scoring functions get ``stem=True``.

    Call it on normalised text (:func:`normalize_answer`); it splits on spaces.
    """
    return " ".join(_stem_word(word) for word in text.split())


@functools.lru_cache(maxsize=1 << 16)
def _stem_word(word: str) -> str:
    """Stem one lower-case word; see :func:`stem_answer`."""
    if not word.isalpha():
        return word
    return _lemmatise_ing(_singularise(word))


def _compared(prediction: str, answers: Sequence[str], normalization: str, stem: bool) -> tuple[str, list[str]]:
    """Prediction and answers as they are compared: normalised, then stemmed when asked."""
    target, truth = prepare(prediction, answers, normalization)
    if stem:
        return stem_answer(target), [stem_answer(answer) for answer in truth]
    return target, truth


# --------------------------------------------------------------------------
# Scoring.
# --------------------------------------------------------------------------


def _check_answers(answers: Sequence[str]) -> None:
    """Raise if the ground truth is empty or not a sequence of strings."""
    if isinstance(answers, str):
        raise TypeError("answers must be a sequence of strings, not one string")
    if len(answers) == 0:
        raise ValueError("at least one ground-truth answer is needed to score a prediction")
    for answer in answers:
        if not isinstance(answer, str):
            raise TypeError(f"each answer must be a string, got {type(answer).__name__}: {answer!r}")


def vqa_accuracy(
    prediction: str,
    answers: Sequence[str],
    stem: bool = False,
    normalization: str = DEFAULT_NORMALIZATION,
) -> float:
    """VQA accuracy of one prediction against its ground-truth answers, in [0, 1].

    The mean over the n leave-one-out subsets (each answer left out once) of
    min(1, matches in the other n - 1 answers / 3), after ``normalization``
    (and stemming, both sides, when ``stem``). With 10 answers, 1, 2, 3 and 4+
    matches give exactly 0.3, 0.6, 0.9 and 1.0.

    With n answers of which m match, acc = (m * min(3, m - 1) + (n - m) * min(3, m)) / (3 n),
    kept in integers and divided once. Deviation from upstream (both references
    give 0 for n = 1, whose only subset is empty): a single answer is scored as
    exact match (1.0 or 0.0), so records with one reference answer are usable.
    """
    _check_answers(answers)
    target, truth = _compared(prediction, answers, normalization, stem)
    total = len(truth)
    matches = sum(1 for answer in truth if answer == target)
    if total == 1:
        return float(matches)
    # Leaving out a matching answer leaves matches - 1; leaving out another leaves matches.
    numerator = matches * min(3, matches - 1) + (total - matches) * min(3, matches)
    return numerator / (3 * total)


def _winning_group(answers: Sequence[str], stem: bool, normalization: str) -> tuple[str, list[int]]:
    """The most frequent normalised form and the positions of the answers in it (ties: see below)."""
    _check_answers(answers)
    _, truth = _compared("", answers, normalization, stem)
    raw_count = Counter(answers)
    # normalised form -> [count, best raw count, first position]
    groups: dict[str, list[int]] = {}
    members: dict[str, list[int]] = {}
    for position, (answer, key) in enumerate(zip(answers, truth, strict=True)):
        group = groups.get(key)
        if group is None:
            groups[key] = [1, raw_count[answer], position]
            members[key] = [position]
        else:
            group[0] += 1
            group[1] = max(group[1], raw_count[answer])
            members[key].append(position)
    key = min(groups, key=lambda key: (-groups[key][0], -groups[key][1], groups[key][2]))
    return key, members[key]


def most_common_answer(answers: Sequence[str], stem: bool = False, normalization: str = DEFAULT_NORMALIZATION) -> str:
    """The most frequent answer, in its normalised form (stemmed too when ``stem``): what scoring compares.

    Ties between normalised answers are broken deterministically (docs/OKVQA.md):

    1. the higher count of the most frequent raw spelling in the group (an
       answer the annotators wrote identically wins over one spelled in
       several ways);
    2. then the first occurrence in ``answers``.

    The training target is :func:`training_target`, the same group's natural spelling.

    >>> most_common_answer(["Dog", "dog", "cat", "cat", "the dog", "cats"])
    'dog'
    >>> most_common_answer(["Cat", "cat!", "dog", "dog"])
    'dog'
    """
    return _winning_group(answers, stem, normalization)[0]


def training_target(answers: Sequence[str], normalization: str = DEFAULT_NORMALIZATION) -> str:
    """The answer a model is trained to say: the most frequent *raw* spelling inside the group
    :func:`most_common_answer` picks (ties: first occurrence), stripped of outer white space.

    Natural text, as a person writes it; scoring still compares normalised forms.

    >>> training_target(["Ben & Jerry's"] * 3 + ["ben & jerry's"] * 2 + ["haagen dazs"] * 4)
    "Ben & Jerry's"
    >>> training_target(["Cat", "cat!", "dog", "Dog", "dog"])
    'dog'
    """
    _, positions = _winning_group(answers, False, normalization)
    spellings = Counter(answers[position] for position in positions)
    best = max(spellings.values())
    return next(answers[p] for p in positions if spellings[answers[p]] == best).strip()


def exact_match(
    prediction: str,
    answers: Sequence[str],
    stem: bool = False,
    normalization: str = DEFAULT_NORMALIZATION,
) -> float:
    """1.0 when the normalised prediction equals the most common normalised answer, else 0.0."""
    target, _ = _compared(prediction, answers, normalization, stem)
    return float(target == most_common_answer(answers, stem=stem, normalization=normalization))


def score_predictions(
    records: Iterable[Mapping], stem: bool = False, normalization: str = DEFAULT_NORMALIZATION
) -> dict:
    """Aggregate VQA accuracy and exact match over predictions, in percent.

    Each record is a mapping with ``prediction`` (str), ``answers`` (the
    ground-truth strings) and optionally ``question_type`` (the OK-VQA
    knowledge category) and ``question_id``. Returns::

        {"vqa_accuracy": 61.3,        # mean VQA accuracy, percent
         "exact_match": 55.0,         # mean exact match, percent
         "count": 5046,               # records scored
         "per_category": {"one": 58.2, ...},  # VQA accuracy per question_type, percent
         "per_answer_type": {"other": 61.0},  # per answer_type (the official files have one)
         "per_question": {"2971475": 0.6, ...},  # VQA accuracy per question_id, 0..1
         "normalization": "lmms-eval",
         "stem": False}               # whether stemming was used

    ``per_category`` holds only records that carry a ``question_type`` and is
    sorted by category (``per_answer_type`` likewise for ``answer_type``);
    ``per_question`` only those with a ``question_id`` (as text). With no records
    every number is 0.0 and count 0. The training callback and the offline scorer
    both call this.
    """
    check_normalization(normalization)
    count = 0
    accuracy_sum = 0.0
    exact_sum = 0.0
    category_sums: dict[str, float] = {}
    category_counts: Counter[str] = Counter()
    answer_type_sums: dict[str, float] = {}
    answer_type_counts: Counter[str] = Counter()
    per_question: dict[str, float] = {}
    for record in records:
        prediction = record["prediction"]
        answers = record["answers"]
        accuracy = vqa_accuracy(prediction, answers, stem=stem, normalization=normalization)
        count += 1
        accuracy_sum += accuracy
        exact_sum += exact_match(prediction, answers, stem=stem, normalization=normalization)
        category = record.get("question_type")
        # A category averages its questions' accuracies, as today's official tool does (its
        # 2015 beta took each question's last leave-one-out score: not reproduced).
        if category is not None:
            category = str(category)
            category_sums[category] = category_sums.get(category, 0.0) + accuracy
            category_counts[category] += 1
        answer_type = record.get("answer_type")
        if answer_type is not None:
            answer_type = str(answer_type)
            answer_type_sums[answer_type] = answer_type_sums.get(answer_type, 0.0) + accuracy
            answer_type_counts[answer_type] += 1
        if record.get("question_id") is not None:
            per_question[str(record["question_id"])] = accuracy
    return {
        "vqa_accuracy": 100.0 * accuracy_sum / count if count else 0.0,
        "exact_match": 100.0 * exact_sum / count if count else 0.0,
        "count": count,
        "per_category": {
            category: 100.0 * category_sums[category] / category_counts[category] for category in sorted(category_sums)
        },
        "per_answer_type": {
            kind: 100.0 * answer_type_sums[kind] / answer_type_counts[kind] for kind in sorted(answer_type_sums)
        },
        "per_question": per_question,
        "normalization": normalization,
        "stem": stem,
    }
