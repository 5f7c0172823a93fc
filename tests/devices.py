"""Test helper: the CUDA devices the user had before the suite hid them.

``tests/conftest.py`` calls :func:`hide_cuda` first thing: the suite pins CPU numbers and
spawns training that expects a CPU, so no test and no subprocess sees a GPU by accident.
The ``gpu``-marked tests run their work in subprocesses given :func:`gpu_environment`.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys

ORIGINAL_CUDA_VISIBLE_DEVICES = os.environ.get("CUDA_VISIBLE_DEVICES")


def hide_cuda() -> None:
    os.environ["CUDA_VISIBLE_DEVICES"] = ""


def gpu_environment(**extra: str) -> dict[str, str]:
    """``os.environ`` with the user's CUDA devices visible again."""
    env = dict(os.environ, **extra)
    if ORIGINAL_CUDA_VISIBLE_DEVICES is None:
        env.pop("CUDA_VISIBLE_DEVICES", None)
    else:
        env["CUDA_VISIBLE_DEVICES"] = ORIGINAL_CUDA_VISIBLE_DEVICES
    return env


@functools.cache
def cuda_count() -> int:
    """How many CUDA devices a subprocess with :func:`gpu_environment` sees (0 on CPU machines)."""
    code = "import torch; print(torch.cuda.device_count() if torch.cuda.is_available() else 0)"
    result = subprocess.run([sys.executable, "-c", code], env=gpu_environment(), capture_output=True, text=True)
    return int(result.stdout.strip() or 0) if result.returncode == 0 else 0
