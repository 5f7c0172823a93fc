"""scripts/benchmark.py runs in each mode and writes its numbers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def bench(tmp_path, *args: str) -> dict:
    out = tmp_path / "result.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}
    result = subprocess.run(
        [sys.executable, "scripts/benchmark.py", *args, "--json", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert "|" in result.stdout
    return json.loads(out.read_text())


def test_train_mode(tmp_path):
    result = bench(tmp_path, "--steps", "3", "--warmup-steps", "1", "--batch-size", "2")
    assert result["steps_timed"] == 3 and result["median_step_s"] > 0 and result["tokens_per_s"] > 0
    assert result["tokens_per_sample"] > 16  # image tokens are counted


def test_eval_and_checkpoint_modes(tmp_path):
    result = bench(
        tmp_path, "--mode", "eval", "--eval-batch-sizes", "1", "4", "--questions", "4", "--max-new-tokens", "4"
    )
    assert [row["batch_size"] for row in result["rows"]] == [1, 4]
    result = bench(tmp_path, "--mode", "checkpoint", "--lora-r", "8")
    assert result["save_s"] > 0 and result["load_s"] > 0 and "non_lora_trainables.bin" in result["files_bytes"]
