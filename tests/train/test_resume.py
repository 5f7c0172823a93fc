"""Checkpoints and exact resume: a run killed after step k and resumed ends where an
uninterrupted run ends (weights and logged losses), and partial checkpoints are ignored."""

from __future__ import annotations

import json
import shutil
import sys

import pytest
import torch
from launch import deepspeed_command, recipe_flags, run
from safetensors.torch import load_file

from llava.train.checkpointing import NON_LORA_FILE, STAGING_DIR, latest_checkpoint

SAVE_STEPS = 4


def flags(model_dir, data_dir, output_dir):
    base = recipe_flags(model_dir, data_dir, output_dir, epochs=2)
    position = base.index("--save_strategy")
    base[position + 1] = "steps"
    return base + ["--save_steps", str(SAVE_STEPS)]


def final_state(output_dir):
    adapter = load_file(str(output_dir / "adapter_model.safetensors"))
    extras = torch.load(output_dir / NON_LORA_FILE, weights_only=True)
    return {**adapter, **extras}


def losses(output_dir):
    state = json.loads((output_dir / "trainer_state.json").read_text())
    return {entry["step"]: entry["loss"] for entry in state["log_history"] if "loss" in entry}


def assert_same_run(reference, resumed):
    a, b = final_state(reference), final_state(resumed)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-5, rtol=1e-5, msg=key)
    reference_losses, resumed_losses = losses(reference), losses(resumed)
    later = [step for step in reference_losses if step > SAVE_STEPS]
    assert later and all(step in resumed_losses for step in later)
    for step in later:
        assert resumed_losses[step] == pytest.approx(reference_losses[step], abs=1e-5), step


def interrupted_copy(reference, target):
    """What a run killed after step SAVE_STEPS, mid-way through its next save, leaves."""
    target.mkdir()
    shutil.copytree(reference / f"checkpoint-{SAVE_STEPS}", target / f"checkpoint-{SAVE_STEPS}")
    partial = target / STAGING_DIR / f"checkpoint-{2 * SAVE_STEPS}"
    partial.mkdir(parents=True)
    (partial / "adapter_model.safetensors").write_bytes(b"torn")


def test_every_lora_checkpoint_is_complete_and_resume_is_exact(tiny_llava_dir, colour_vqa_dir, tmp_path):
    reference = tmp_path / "llava-tiny-task-lora"
    run([sys.executable, "-m", "llava.train.train", *flags(tiny_llava_dir, colour_vqa_dir, reference)])
    checkpoints = sorted(p.name for p in reference.glob("checkpoint-*"))
    assert checkpoints, "no checkpoints saved"
    for name in checkpoints:
        files = {p.name for p in (reference / name).iterdir()}
        assert {
            "adapter_config.json",
            "adapter_model.safetensors",
            NON_LORA_FILE,
            "config.json",
            "trainer_state.json",
            "optimizer.pt",
            "scheduler.pt",
        } <= files, (name, files)
    assert not (reference / STAGING_DIR).exists()

    resumed = tmp_path / "resumed-lora"
    interrupted_copy(reference, resumed)
    assert latest_checkpoint(str(resumed)).endswith(f"checkpoint-{SAVE_STEPS}")
    result = run([sys.executable, "-m", "llava.train.train", *flags(tiny_llava_dir, colour_vqa_dir, resumed)])
    assert f"Resuming from {resumed / f'checkpoint-{SAVE_STEPS}'}" in result.stdout + result.stderr
    assert_same_run(reference, resumed)


def test_a_fresh_run_says_so(tiny_llava_dir, colour_vqa_dir, tmp_path):
    output = tmp_path / "fresh-lora"
    result = run(
        [sys.executable, "-m", "llava.train.train", *recipe_flags(tiny_llava_dir, colour_vqa_dir, output, epochs=1)]
    )
    assert "Starting a fresh run" in result.stdout + result.stderr


@pytest.mark.slow
def test_resume_is_exact_with_two_processes_under_zero2(tiny_llava_dir, colour_vqa_dir, tmp_path):
    reference = tmp_path / "llava-tiny-task-lora"
    report = tmp_path / "report.json"
    run(
        [
            *deepspeed_command(2, "zero2.json"),
            *flags(tiny_llava_dir, colour_vqa_dir, reference),
            "--fingerprint",
            str(report),
        ]
    )
    resumed = tmp_path / "resumed-lora"
    interrupted_copy(reference, resumed)
    run(
        [
            *deepspeed_command(2, "zero2.json"),
            *flags(tiny_llava_dir, colour_vqa_dir, resumed),
            "--fingerprint",
            str(report),
        ]
    )
    assert_same_run(reference, resumed)
