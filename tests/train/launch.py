"""How tests launch real training runs: upstream's flags on the tiny model, as subprocesses.

Single process: ``python -m llava.train.train ...``; several: ``deepspeed --num_gpus N``
over gloo on the CPU. ``OMP_NUM_THREADS=1`` keeps two processes from fighting over
two cores; W&B is disabled.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

from lora_fixture import recipe_flags  # noqa: F401  (re-exported for the training tests)

ROOT = Path(__file__).resolve().parents[2]
HELPER = Path(__file__).with_name("fingerprint_train.py")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(command: list[str], timeout: int = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", WANDB_MODE="disabled", TOKENIZERS_PARALLELISM="false")
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(command[:6])} ... failed:\n{result.stdout[-4000:]}\n{result.stderr[-6000:]}")
    return result


def deepspeed_command(processes: int, config: str) -> list[str]:
    launcher = shutil.which("deepspeed") or str(Path(sys.executable).with_name("deepspeed"))
    return [
        launcher,
        "--num_gpus",
        str(processes),
        "--master_port",
        str(_free_port()),
        str(HELPER),
        "--deepspeed",
        str(ROOT / "scripts" / config),
    ]
