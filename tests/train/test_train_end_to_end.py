"""The whole LoRA fine-tune through the real entry points, on the tiny model.

Each run is a subprocess launched as users launch it (``python`` or
``deepspeed --num_gpus 2`` over gloo on the CPU), with upstream's flags. The
helper ``fingerprint_train.py`` reports what changed after training.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from launch import HELPER, deepspeed_command, recipe_flags, run

from llava.model.tokenizer_files import UPSTREAM_TOKENIZER_FILES
from llava.train.checkpointing import NON_LORA_FILE


def check_run(output_dir: Path, report: dict) -> None:
    losses = report["losses"]
    assert len(losses) >= 6
    first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
    assert last < first, f"loss did not fall: {losses}"
    assert report["base_identical"], report["mismatches"][:5]
    assert report["tower_identical"], report["mismatches"][:5]
    assert report["projector_changed"] and report["lora_nonzero"]
    assert all("lora_" in name or "mm_projector" in name for name in report["trainable"])
    assert not any("vision_tower" in name for name in report["trainable"]), "LoRA reached the CLIP tower"

    # Upstream's output layout for a LoRA run.
    files = {path.name for path in output_dir.iterdir()}
    assert {"config.json", "adapter_config.json", NON_LORA_FILE} <= files
    assert "adapter_model.safetensors" in files or "adapter_model.bin" in files
    from safetensors.torch import load_file

    adapter = load_file(str(output_dir / "adapter_model.safetensors"))
    assert adapter and all("lora_" in key and "vision_tower" not in key for key in adapter)
    extras = torch.load(output_dir / NON_LORA_FILE, weights_only=True)
    assert sorted(extras) == [
        "base_model.model.model.mm_projector.0.bias",
        "base_model.model.model.mm_projector.0.weight",
        "base_model.model.model.mm_projector.2.bias",
        "base_model.model.model.mm_projector.2.weight",
    ]
    config = json.loads((output_dir / "config.json").read_text())
    assert config["model_type"] == "llava_llama" and config["mm_projector_lr"] == 2e-3
    assert not [path for path in output_dir.iterdir() if path.name.startswith(".")], "temporary files left"


# The single-process run's logged losses for the tiny model, the colour set and seed 42 on the
# CPU, read once and pinned (torchtune's recipe tests do the same): any change to data, masking,
# model set-up, seeding or the optimizer moves them. Update them only for a deliberate change.
EXPECTED_LOSSES = [
    6.712167,
    7.059778,
    6.183843,
    5.800744,
    5.546855,
    5.174051,
    6.187564,
    4.997128,
    4.718730,
    4.485771,
    4.424530,
    4.232444,
    4.286841,
    5.485882,
    3.974939,
    4.034916,
    4.015107,
    4.007855,
    3.775271,
    3.880472,
    5.253433,
]


def test_lora_fine_tune_single_process(tiny_llava_dir, colour_vqa_dir, tmp_path):
    output = tmp_path / "llava-tiny-task-lora"
    report_file = tmp_path / "report.json"
    run(
        [
            sys.executable,
            str(HELPER),
            *recipe_flags(tiny_llava_dir, colour_vqa_dir, output),
            "--fingerprint",
            str(report_file),
        ]
    )
    report = json.loads(report_file.read_text())
    check_run(output, report)
    assert report["losses"] == pytest.approx(EXPECTED_LOSSES, rel=1e-4), json.dumps(report["losses"])


@pytest.mark.slow
@pytest.mark.parametrize("config", ["zero2.json", "zero3.json"])
def test_lora_fine_tune_deepspeed_two_processes(tiny_llava_dir, colour_vqa_dir, tmp_path, config):
    output = tmp_path / "llava-tiny-task-lora"
    report_file = tmp_path / "report.json"
    run(
        [
            *deepspeed_command(2, config),
            *recipe_flags(tiny_llava_dir, colour_vqa_dir, output),
            "--fingerprint",
            str(report_file),
        ]
    )
    check_run(output, json.loads(report_file.read_text()))


@pytest.mark.slow
def test_qlora_4bit_zero2_two_processes(tiny_llava_dir, colour_vqa_dir, tmp_path):
    pytest.importorskip("bitsandbytes")
    output = tmp_path / "llava-tiny-task-qlora"
    report_file = tmp_path / "report.json"
    run(
        [
            *deepspeed_command(2, "zero2.json"),
            *recipe_flags(tiny_llava_dir, colour_vqa_dir, output),
            "--bits",
            "4",
            "--bf16",
            "True",
            "--fingerprint",
            str(report_file),
        ]
    )
    report = json.loads(report_file.read_text())
    assert report.get("packed_4bit_skipped", 0) > 0  # the base really was quantized
    check_run(output, report)


def test_same_seed_gives_the_same_run(tiny_llava_dir, colour_vqa_dir, tmp_path):
    """Adapters are initialised before the Trainer exists; train() seeds them too."""
    from safetensors.torch import load_file

    weights = []
    for name in ("first", "second"):
        output = tmp_path / name / "llava-tiny-task-lora"
        flags = recipe_flags(tiny_llava_dir, colour_vqa_dir, output, epochs=1)
        run([sys.executable, "-m", "llava.train.train", *flags, "--max_steps", "2"])
        weights.append(load_file(str(output / "adapter_model.safetensors")))
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][key], weights[1][key]) for key in weights[0])


def test_projector_only_pretraining_saves_and_loads_mm_projector(tiny_llava_dir, colour_vqa_dir, tmp_path):
    """Stage 1 (--tune_mm_mlp_adapter): only mm_projector.bin is saved, and the loader's projector branch uses it."""
    from llava.model.builder import checkpoint_kind, load_pretrained_model

    output = tmp_path / "llava-tiny-pretrain"
    flags = recipe_flags(
        tiny_llava_dir,
        colour_vqa_dir,
        output,
        epochs=1,
        lora_enable="False",
        tune_mm_mlp_adapter="True",
        learning_rate="1e-2",
    )
    run([sys.executable, "-m", "llava.train.train", *flags, "--max_steps", "2"])
    assert {"mm_projector.bin", "config.json", *UPSTREAM_TOKENIZER_FILES} <= {p.name for p in output.iterdir()}
    saved = torch.load(output / "mm_projector.bin", weights_only=True)
    assert sorted(saved) == [
        "model.mm_projector.0.bias",
        "model.mm_projector.0.weight",
        "model.mm_projector.2.bias",
        "model.mm_projector.2.weight",
    ]
    assert checkpoint_kind(output, str(tiny_llava_dir), output.name) == "projector"
    _, model, _, _ = load_pretrained_model(str(output), str(tiny_llava_dir), output.name, device="cpu")
    state = model.state_dict()
    assert all(torch.equal(state[key], value) for key, value in saved.items())


def test_full_fine_tune_saves_what_upstreams_loader_reads(tiny_llava_dir, colour_vqa_dir, tmp_path):
    """A full fine-tune (no LoRA) writes the model and the slow tokenizer's files; it loads with no base."""
    from llava.model.builder import load_pretrained_model

    output = tmp_path / "llava-tiny-full"
    flags = recipe_flags(tiny_llava_dir, colour_vqa_dir, output, epochs=1, lora_enable="False")
    run([sys.executable, "-m", "llava.train.train", *flags, "--max_steps", "1"])
    files = {p.name for p in output.iterdir()}
    assert {"config.json", "model.safetensors", *UPSTREAM_TOKENIZER_FILES} <= files
    assert (output / "tokenizer.model").read_bytes() == (tiny_llava_dir / "tokenizer.model").read_bytes()
    tokenizer, model, _, _ = load_pretrained_model(str(output), None, output.name, device="cpu")
    assert tokenizer.pad_token == "<unk>" and model.config.mm_vision_tower
