"""The VQA accuracy metric: answer normalisation, optional stemming, scoring and aggregation.

This is the one implementation of the metric in the project. The OK-VQA
converter uses it to pick the training target, the evaluation callback uses it
between epochs and the offline scorer uses it on a predictions file, so all
three give identical numbers.

Metric (docs/OKVQA.md). For a prediction p and ground-truth answers g1..gn
(n = 10 in OK-VQA), both normalised by :func:`normalize_answer`::

    acc(p) = mean over i of min(1, #{j != i : g_j == p} / 3)

that is, each of the n leave-one-out subsets of n - 1 answers scores
min(1, matches / 3), and the n scores are averaged. With 10 answers, 1, 2, 3
and 4 or more matching answers give 0.3, 0.6, 0.9 and 1.0. Dataset accuracy
is the mean over questions, reported in percent.

Example::

    >>> from llava.eval.vqa_accuracy import vqa_accuracy, normalize_answer
    >>> normalize_answer("The Two Dogs!")
    '2 dogs'
    >>> vqa_accuracy("dog", ["dog", "dogs", "cat"] + ["puppy"] * 7)
    0.3
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Iterable, Sequence

__all__ = [
    "exact_match",
    "most_common_answer",
    "normalize_answer",
    "score_predictions",
    "stem_answer",
    "vqa_accuracy",
]

# --------------------------------------------------------------------------
# Normalisation tables (facts from the standard VQA evaluator).
# --------------------------------------------------------------------------

# Removed, or replaced by one space when the run stands between word characters.
_PUNCTUATION = ';/[]"{}()=+\\_-><@`,?!'
_PUNCTUATION_RUN = re.compile("[" + re.escape(_PUNCTUATION) + "]+")
_PERIOD = re.compile(r"\.")
_WORD_CHARACTER = re.compile(r"\w")

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

# Written-without-apostrophe form -> contraction, as the standard evaluator
# restores them. Its capitalised keys (Im, Ive, Id've, I'dve) can never match
# lower-cased text, its identity entries change nothing and its
# "somebody'd" -> "somebodyd" entry removes an apostrophe instead of restoring
# one, so those are left out; every other entry is here.
_CONTRACTION_PAIRS = """
aint ain't  arent aren't  cant can't  couldve could've  couldnt couldn't
couldn'tve couldn't've  couldnt've couldn't've  didnt didn't  doesnt doesn't
dont don't  hadnt hadn't  hadnt've hadn't've  hadn'tve hadn't've  hasnt hasn't
havent haven't  hed he'd  hed've he'd've  he'dve he'd've  hes he's  howd how'd
howll how'll  hows how's  isnt isn't  itd it'd  itd've it'd've  it'dve it'd've
itll it'll  maam ma'am  mightnt mightn't  mightnt've mightn't've
mightn'tve mightn't've  mightve might've  mustnt mustn't  mustve must've
neednt needn't  notve not've  oclock o'clock  oughtnt oughtn't
ow's'at 'ow's'at  'ows'at 'ow's'at  'ow'sat 'ow's'at  shant shan't
shed've she'd've  she'dve she'd've  shouldve should've  shouldnt shouldn't
shouldnt've shouldn't've  shouldn'tve shouldn't've  somebodyd've somebody'd've
somebody'dve somebody'd've  somebodyll somebody'll  somebodys somebody's
someoned someone'd  someoned've someone'd've  someone'dve someone'd've
someonell someone'll  someones someone's  somethingd something'd
somethingd've something'd've  something'dve something'd've
somethingll something'll  thats that's  thered there'd  thered've there'd've
there'dve there'd've  therere there're  theres there's  theyd they'd
theyd've they'd've  they'dve they'd've  theyll they'll  theyre they're
theyve they've  twas 'twas  wasnt wasn't  wed've we'd've  we'dve we'd've
weve we've  werent weren't  whatll what'll  whatre what're  whats what's
whatve what've  whens when's  whered where'd  wheres where's  whereve where've
whod who'd  whod've who'd've  who'dve who'd've  wholl who'll  whos who's
whove who've  whyll why'll  whyre why're  whys why's  wont won't
wouldve would've  wouldnt wouldn't  wouldnt've wouldn't've
wouldn'tve wouldn't've  yall y'all  yall'll y'all'll  y'allll y'all'll
yall'd've y'all'd've  y'alld've y'all'd've  y'all'dve y'all'd've  youd you'd
youd've you'd've  you'dve you'd've  youll you'll  youre you're  youve you've
"""
_CONTRACTION_WORDS = _CONTRACTION_PAIRS.split()
_CONTRACTIONS = dict(zip(_CONTRACTION_WORDS[0::2], _CONTRACTION_WORDS[1::2], strict=True))


def _replace_punctuation_run(match: re.Match[str]) -> str:
    """A run of listed punctuation: one space between word characters, else nothing.

    A comma run between two digits is a thousands separator and is removed
    (``1,000`` -> ``1000``), as the standard evaluator does.
    """
    text = match.string
    before = text[match.start() - 1] if match.start() > 0 else ""
    after = text[match.end()] if match.end() < len(text) else ""
    if not (_WORD_CHARACTER.match(before) and _WORD_CHARACTER.match(after)):
        return ""
    if match.group() == "," and before.isdigit() and after.isdigit():
        return ""
    return " "


def _replace_period(match: re.Match[str]) -> str:
    """Keep a period only as a decimal point: a digit follows and no letter precedes it."""
    text = match.string
    before = text[match.start() - 1] if match.start() > 0 else ""
    after = text[match.end()] if match.end() < len(text) else ""
    if after.isdigit() and not before.isalpha():
        return "."
    return ""


@functools.lru_cache(maxsize=1 << 16)
def normalize_answer(text: str) -> str:
    """Normalise an answer or a prediction as the VQA evaluator does (docs/OKVQA.md).

    Steps, in order:

    1. lower-case, collapse white space (spaces, tabs, new lines), strip;
    2. periods: a period stays only when it is a decimal point (a digit
       follows and no letter precedes it: ``3.5``, ``.75``); every other
       period is removed (``u.s.a.`` -> ``usa``). Then each run of the
       characters ``; / [ ] " { } ( ) = + \\ _ - > < @ ` , ? !`` becomes one
       space when it stands between two word characters (``hot-dog`` ->
       ``hot dog``, ``black/white`` -> ``black white``) and is removed
       otherwise (``(dog)`` -> ``dog``, ``yes!`` -> ``yes``); a comma between
       two digits is a thousands separator and is removed (``1,000`` ->
       ``1000``);
    3. the number words ``none zero one ... ten`` become digits (``none`` ->
       ``0``);
    4. the articles ``a``, ``an``, ``the`` are dropped;
    5. contractions written without the apostrophe are restored with the
       standard evaluator's table (``dont`` -> ``don't``).

    Words are joined by single spaces. Results are cached (answers repeat a
    lot), so calling this on every answer of a dataset is cheap.

    >>> normalize_answer("  The Hot-Dog, isnt it?  ")
    "hot dog isn't it"
    """
    text = " ".join(text.lower().split())
    text = _PERIOD.sub(_replace_period, text)
    text = _PUNCTUATION_RUN.sub(_replace_punctuation_run, text)
    words = []
    for word in text.split():
        word = _NUMBER_WORDS.get(word, word)
        if word in _ARTICLES:
            continue
        words.append(_CONTRACTIONS.get(word, word))
    return " ".join(words)


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


def _prepare(text: str, stem: bool) -> str:
    """Normalise, and stem when asked: the form in which answers are compared."""
    normalised = normalize_answer(text)
    return stem_answer(normalised) if stem else normalised


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
            raise TypeError(
                f"each answer must be a string, got {type(answer).__name__}: {answer!r}"
            )


def vqa_accuracy(prediction: str, answers: Sequence[str], stem: bool = False) -> float:
    """VQA accuracy of one prediction against its ground-truth answers, in [0, 1].

    The mean over the n leave-one-out subsets (each answer left out once) of
    min(1, matches in the other n - 1 answers / 3), after normalising the
    prediction and every answer (and stemming them when ``stem`` is true).
    With 10 answers, 1, 2, 3 and 4+ matches give exactly 0.3, 0.6, 0.9 and 1.0.

    Any number of answers works: with n answers of which m match,
    acc = (m * min(3, m - 1) + (n - m) * min(3, m)) / (3 n). One detail for
    n = 1: the only subset is empty, so the formula would always give 0; a
    single answer is instead scored as exact match (1.0 or 0.0).

    The sum is kept in integers and divided once, so the values above are the
    exact floats 0.3, 0.6 and 0.9.
    """
    _check_answers(answers)
    target = _prepare(prediction, stem)
    total = len(answers)
    matches = sum(1 for answer in answers if _prepare(answer, stem) == target)
    if total == 1:
        return float(matches)
    # Leaving out a matching answer leaves matches - 1; leaving out another leaves matches.
    numerator = matches * min(3, matches - 1) + (total - matches) * min(3, matches)
    return numerator / (3 * total)


def most_common_answer(answers: Sequence[str], stem: bool = False) -> str:
    """The most frequent answer, in its normalised form (stemmed too when ``stem``).

    Returns the normalised text, not the raw string, so it can be used as a
    clean training target and compared with normalised predictions. Ties
    between normalised answers are broken deterministically (docs/OKVQA.md):

    1. the higher count of the most frequent raw spelling in the group (an
       answer the annotators wrote identically wins over one spelled in
       several ways);
    2. then the first occurrence in ``answers``.

    >>> most_common_answer(["Dog", "dog", "cat", "cat", "the dog", "cats"])
    'dog'
    >>> most_common_answer(["Cat", "cat!", "dog", "dog"])
    'dog'
    """
    _check_answers(answers)
    raw_count = Counter(answers)
    # normalised form -> [count, best raw count, first position]
    groups: dict[str, list[int]] = {}
    for position, answer in enumerate(answers):
        key = _prepare(answer, stem)
        group = groups.get(key)
        if group is None:
            groups[key] = [1, raw_count[answer], position]
        else:
            group[0] += 1
            group[1] = max(group[1], raw_count[answer])
    return min(groups, key=lambda key: (-groups[key][0], -groups[key][1], groups[key][2]))


def exact_match(prediction: str, answers: Sequence[str], stem: bool = False) -> float:
    """1.0 when the normalised prediction equals the most common normalised answer, else 0.0."""
    return float(_prepare(prediction, stem) == most_common_answer(answers, stem=stem))


def score_predictions(records: Iterable[dict], stem: bool = False) -> dict:
    """Aggregate VQA accuracy and exact match over predictions, in percent.

    Each record is a mapping with ``prediction`` (str), ``answers`` (the
    ground-truth strings) and optionally ``question_type`` (the OK-VQA
    knowledge category). Returns::

        {"vqa_accuracy": 61.3,        # mean VQA accuracy, percent
         "exact_match": 55.0,         # mean exact match, percent
         "count": 5046,               # records scored
         "per_category": {"one": 58.2, ...},  # VQA accuracy per question_type
         "stem": False}               # whether stemming was used

    ``per_category`` holds only records that carry a ``question_type`` and is
    sorted by category. With no records every number is 0.0 and count 0. The
    training callback and the offline scorer both call this, so they report
    identical numbers.
    """
    count = 0
    accuracy_sum = 0.0
    exact_sum = 0.0
    category_sums: dict[str, float] = {}
    category_counts: Counter[str] = Counter()
    for record in records:
        prediction = record["prediction"]
        answers = record["answers"]
        accuracy = vqa_accuracy(prediction, answers, stem=stem)
        count += 1
        accuracy_sum += accuracy
        exact_sum += exact_match(prediction, answers, stem=stem)
        category = record.get("question_type")
        if category is not None:
            category = str(category)
            category_sums[category] = category_sums.get(category, 0.0) + accuracy
            category_counts[category] += 1
    return {
        "vqa_accuracy": 100.0 * accuracy_sum / count if count else 0.0,
        "exact_match": 100.0 * exact_sum / count if count else 0.0,
        "count": count,
        "per_category": {
            category: 100.0 * category_sums[category] / category_counts[category]
            for category in sorted(category_sums)
        },
        "stem": stem,
    }
