"""Every file a run writes follows the umask (0666 & ~umask), in the final output and in every
checkpoint: safetensors and mkstemp create 0600, which a serving user could not read."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from launch import ROOT
from lora_fixture import tiny_lora_flags


@pytest.mark.parametrize("mask", [0o022, 0o077])
def test_run_files_follow_the_umask(tiny_llava_dir, colour_vqa_dir, tmp_path, mask):
    out = tmp_path / "llava-tiny-task-lora"
    flags = tiny_lora_flags(tiny_llava_dir, colour_vqa_dir, out, max_steps=1)
    flags[flags.index("--save_strategy") + 1] = "steps"
    flags += ["--save_steps", "1"]
    env = dict(os.environ, OMP_NUM_THREADS="1", WANDB_MODE="disabled", HF_HUB_OFFLINE="1")
    result = subprocess.run(
        [sys.executable, "-m", "llava.train.train", *flags],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        preexec_fn=lambda: os.umask(mask),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    files = [path for path in out.rglob("*") if path.is_file()]
    assert any(path.name == "adapter_model.safetensors" and path.parent.name == "checkpoint-1" for path in files)
    wrong = {
        str(path.relative_to(out)): oct(stat.S_IMODE(path.stat().st_mode))
        for path in files
        if stat.S_IMODE(path.stat().st_mode) & ~0o111 != 0o666 & ~mask
    }
    assert not wrong, wrong
    assert Path(out / "adapter_model.safetensors").stat().st_mode & 0o777 == 0o666 & ~mask
