"""llava/utils.py: atomic writes keep the user's umask; non-finite numbers become JSON null."""

from __future__ import annotations

import json
import os
import stat

import pytest

from llava.utils import current_umask, finite_or_none, write_atomic


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_atomic_writes_follow_the_umask(tmp_path, mask, mode):
    old = os.umask(mask)
    try:
        assert current_umask() == mask
        write_atomic(tmp_path / "out.json", "{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "out.json").stat().st_mode) == mode


def test_finite_or_none_makes_valid_json():
    history = [
        {
            "eval_loss": float("nan"),
            "vqa_accuracy": float("inf"),
            "per_category": {"a": float("-inf"), "b": 1.5},
            "steps": [1, float("nan")],
            "tag": "epoch-1",
        }
    ]
    text = json.dumps(finite_or_none(history), allow_nan=False)
    assert json.loads(text) == [
        {
            "eval_loss": None,
            "vqa_accuracy": None,
            "per_category": {"a": None, "b": 1.5},
            "steps": [1, None],
            "tag": "epoch-1",
        }
    ]
