"""Resume loads nothing it cannot vouch for (llava/train/checkpoint_safety.py).

Real checkpoints (plain Trainer and ZeRO-2) pass. A pickle whose ``__reduce__`` calls
``os.system`` is planted in each kind of file they hold; it is refused, naming the file and
the class, and the payload never runs: not in the check, not under ``python -m
llava.train.train``, not under the main script's DeepSpeed launcher.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from launch import ROOT, _free_port
from lora_fixture import tiny_lora_flags
from offline import assert_stayed_offline, offline_env

from llava.train.checkpoint_safety import CheckpointRefused, check_checkpoint, pickle_files


class Payload:
    """Unpickling this runs a shell command that creates ``marker``."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _train(tmp: Path, model: Path, data: Path, name: str, deepspeed: bool) -> Path:
    out = tmp / name
    flags = tiny_lora_flags(model, data, out, max_steps=2)
    flags[flags.index("--save_strategy") + 1] = "steps"
    flags += ["--save_steps", "1"]
    if deepspeed:
        launcher = shutil.which("deepspeed") or str(Path(sys.executable).with_name("deepspeed"))
        command = [launcher, "--num_gpus", "1", "--master_port", str(_free_port()), "llava/train/train_mem.py"]
        flags += ["--deepspeed", str(ROOT / "scripts" / "zero2.json"), "--bits", "4", "--bf16", "True"]  # the recipe
    else:
        command = [sys.executable, "-m", "llava.train.train"]
    env = offline_env(tmp / f"{name}.sockets", dict(os.environ, OMP_NUM_THREADS="1", WANDB_MODE="disabled"))
    result = subprocess.run([*command, *flags], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_llava_dir, colour_vqa_dir) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("resume-safety")
    return {
        "plain": _train(tmp, tiny_llava_dir, colour_vqa_dir, "llava-plain-lora", deepspeed=False),
        "zero2": _train(tmp, tiny_llava_dir, colour_vqa_dir, "llava-zero2-lora", deepspeed=True),
    }


def _copy(run: Path, tmp: Path) -> Path:
    copy = tmp / run.name
    shutil.copytree(run, copy)
    return copy


def test_genuine_checkpoints_pass_and_hold_every_kind_of_pickle(runs):
    names = set()
    for run in runs.values():
        check_checkpoint(run / "checkpoint-2")
        names |= {path.name for path in pickle_files(run / "checkpoint-2")}
    assert {"optimizer.pt", "rng_state.pth", "scheduler.pt", "training_args.bin", "non_lora_trainables.bin"} <= names
    assert {"mp_rank_00_model_states.pt", "bf16_zero_pp_rank_0_mp_rank_00_optim_states.pt"} <= names


@pytest.mark.parametrize("kind", ["plain", "zero2"])
def test_a_planted_pickle_is_refused_in_every_file_and_never_runs(runs, kind, tmp_path):
    run = _copy(runs[kind], tmp_path)
    checkpoint = run / "checkpoint-2"
    marker = tmp_path / "payload-ran"
    for target in pickle_files(checkpoint):
        original = target.read_bytes()
        for raw in (False, True):  # torch's zip format, and a bare pickle under the same name
            if raw:
                target.write_bytes(pickle.dumps(Payload(marker)))
            else:
                torch.save(Payload(marker), target)
            with pytest.raises(CheckpointRefused) as refused:
                check_checkpoint(checkpoint)
            message = str(refused.value)
            assert str(target) in message and "system" in message, message
            assert "--resume_from_checkpoint" in message and str(run / "checkpoint-1") in message
        target.write_bytes(original)
    assert not marker.exists()
    check_checkpoint(checkpoint)  # restored: passes again


def test_malformed_files_are_named_with_the_way_out(runs, tmp_path):
    run = _copy(runs["plain"], tmp_path)
    checkpoint = run / "checkpoint-2"
    (checkpoint / "trainer_state.json").write_bytes(b"\xff\xfe garbage")
    with pytest.raises(CheckpointRefused, match="trainer_state.json: not valid JSON"):
        check_checkpoint(checkpoint)
    shutil.copy(runs["plain"] / "checkpoint-2" / "trainer_state.json", checkpoint / "trainer_state.json")
    rng = checkpoint / "rng_state.pth"
    rng.write_bytes(rng.read_bytes()[:50])  # truncated
    with pytest.raises(CheckpointRefused, match="rng_state.pth: refused: unreadable"):
        check_checkpoint(checkpoint)
    (checkpoint / "config.json").write_text("[1, 2]")
    with pytest.raises(CheckpointRefused, match="config.json: expected a JSON object"):
        check_checkpoint(checkpoint, trust_pickles=True)  # the JSON checks stay


def test_the_trust_flag_skips_the_pickle_checks(runs, tmp_path):
    checkpoint = _copy(runs["plain"], tmp_path) / "checkpoint-2"
    (checkpoint / "scheduler.pt").write_bytes(b"\x80garbage")
    check_checkpoint(checkpoint, trust_pickles=True)


def _resume(command: list[str], tmp: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    base = dict(env or os.environ, OMP_NUM_THREADS="1", WANDB_MODE="disabled")
    return subprocess.run(command, cwd=ROOT, env=offline_env(tmp / "sockets", base), capture_output=True, text=True,
                          timeout=600)  # fmt: skip


def test_resume_under_train_stops_with_one_line_and_the_payload_never_runs(
    runs, tiny_llava_dir, colour_vqa_dir, tmp_path
):
    run = _copy(runs["plain"], tmp_path)
    marker = tmp_path / "payload-ran"
    torch.save(Payload(marker), run / "checkpoint-2" / "optimizer.pt")
    flags = tiny_lora_flags(tiny_llava_dir, colour_vqa_dir, run, max_steps=3)
    result = _resume([sys.executable, "-m", "llava.train.train", *flags], tmp_path)
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr and not marker.exists()
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "optimizer.pt: refused" in errors[0] and "system" in errors[0]
    assert_stayed_offline(tmp_path / "sockets")


def test_the_main_script_refuses_a_planted_zero2_checkpoint(runs, tmp_path):
    """The hostile case as reported: a pickle in global_stepN/mp_rank_00_model_states.pt of the
    demo's OUTPUT_DIR, then the same command again."""
    output = tmp_path / "llava-tiny-okvqa-qlora"
    output.mkdir()
    shutil.copytree(runs["zero2"] / "checkpoint-2", output / "checkpoint-2")
    marker = tmp_path / "payload-ran"
    torch.save(Payload(marker), output / "checkpoint-2" / "global_step2" / "mp_rank_00_model_states.pt")
    env = dict(os.environ, MODE="demo", DEMO_DIR=str(tmp_path / "demo"), OUTPUT_DIR=str(output), EPOCHS="1",
               DEMO_TRAIN_SIZE="16", DEMO_VAL_SIZE="8", VAL_SUBSET="4")  # fmt: skip
    result = _resume(["bash", "scripts/finetune_qlora_okvqa.sh"], tmp_path, env)
    assert result.returncode != 0 and not marker.exists()
    assert "mp_rank_00_model_states.pt: refused" in result.stderr and "Resuming from" not in result.stderr
    assert json.loads((output / "checkpoint-2" / "trainer_state.json").read_text())  # nothing else touched
