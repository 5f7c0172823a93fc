"""The VQA accuracy metric under its first name: a front for :mod:`llava.metrics.vqa`.

The converter, the evaluation between epochs and user code import these names
from here; the implementation (and both normalisations) lives in
``llava/metrics/`` (docs/EVALUATION.md).

    >>> from llava.eval.vqa_accuracy import normalize_answer, vqa_accuracy
    >>> normalize_answer("The Two Dogs!"), vqa_accuracy("dog", ["dog", "dogs", "cat"] + ["puppy"] * 7)
    ('2 dogs', 0.3)
"""

from __future__ import annotations

from llava.metrics import vqa as _metric
from llava.metrics.vqa import *  # noqa: F403 - a front: the metric's public names, under their first home

__all__ = list(_metric.__all__)
