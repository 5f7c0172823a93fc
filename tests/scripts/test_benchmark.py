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
    assert result["mfu"] is None and result["peak_tflops"] is None  # a CPU has no entry in the table
    assert result["flops_per_sample"] > 0
    # The split of the steps after the timed ones: every phase, each a positive time.
    assert list(result["phases_ms"]) == ["data wait", "vision tower", "LM forward", "backward", "optimizer", "other"]
    assert all(value >= 0 for value in result["phases_ms"].values())
    assert result["phases_ms"]["LM forward"] > 0 and result["phases_ms"]["backward"] > 0
    assert result["gradient_checkpointing"] is False


def test_train_mode_with_checkpointing_auto_and_on(tmp_path):
    auto = bench(
        tmp_path, "--steps", "2", "--warmup-steps", "1", "--gradient-checkpointing", "auto", "--phase-steps", "0"
    )
    assert auto["gradient_checkpointing"] is False and auto["phases_ms"] == {}  # plenty of memory for the tiny model
    forced = bench(tmp_path, "--steps", "2", "--warmup-steps", "1", "--gradient-checkpointing", "--phase-steps", "0")
    assert forced["gradient_checkpointing"] is True
    assert forced["flops_per_sample"] > auto["flops_per_sample"]  # the recomputed forward is counted


def test_a_model_dir_is_built_once_and_reused(tmp_path):
    model = tmp_path / "model"
    bench(tmp_path, "--mode", "eval", "--eval-batch-sizes", "1", "--questions", "1", "--max-new-tokens", "2",
          "--model-dir", str(model))  # fmt: skip
    stamp = (model / "model.safetensors").stat().st_mtime_ns
    bench(tmp_path, "--steps", "1", "--warmup-steps", "0", "--batch-size", "1", "--model-dir", str(model))
    assert (model / "model.safetensors").stat().st_mtime_ns == stamp


def _benchmark_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("benchmark", ROOT / "scripts" / "benchmark.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_peak_comes_from_the_card_or_peak_tflops(monkeypatch):
    benchmark = _benchmark_module()
    monkeypatch.delenv("PEAK_TFLOPS", raising=False)
    assert benchmark.peak_tflops("NVIDIA H200") == 989.0 and benchmark.peak_tflops("NVIDIA A100-SXM4-80GB") == 312.0
    assert benchmark.peak_tflops("NVIDIA H100 PCIe") == 756.0 and benchmark.peak_tflops("CPU (2 cores)") is None
    monkeypatch.setenv("PEAK_TFLOPS", "100")
    assert benchmark.peak_tflops("NVIDIA H200") == 100.0


def test_flops_count_4bit_weights_unpacked_and_checkpointing(tiny_llava):
    import pytest
    import torch

    bnb = pytest.importorskip("bitsandbytes")
    benchmark = _benchmark_module()
    layer = bnb.nn.Linear4bit(64, 32, bias=False, compute_dtype=torch.float32, quant_type="nf4")
    layer.load_state_dict({"weight": torch.randn(32, 64)})
    layer = layer.to("cpu")
    packed = sum(p.numel() for p in layer.parameters())
    if packed != 64 * 32:  # quantized on this backend: storage is half the logical count
        assert benchmark.logical_parameters(layer) == 64 * 32
    tower = tiny_llava.get_vision_tower()
    language = sum(p.numel() for p in tiny_llava.parameters()) - sum(p.numel() for p in tower.parameters())
    with_checkpointing = benchmark.training_flops_per_sample(tiny_llava, 100, True)
    without = benchmark.training_flops_per_sample(tiny_llava, 100, False)
    assert with_checkpointing - without == 2 * language * 100


def test_eval_and_checkpoint_modes(tmp_path):
    result = bench(
        tmp_path, "--mode", "eval", "--eval-batch-sizes", "1", "4", "--questions", "4", "--max-new-tokens", "4"
    )
    assert [row["batch_size"] for row in result["rows"]] == [1, 4] and result["kv_cache"] == "dynamic"
    static = bench(tmp_path, "--mode", "eval", "--eval-batch-sizes", "4", "--questions", "4", "--kv-cache", "static")
    assert static["kv_cache"] == "static" and static["rows"][0]["questions_per_s"] > 0
    result = bench(tmp_path, "--mode", "checkpoint", "--lora-r", "8")
    assert result["save_s"] > 0 and result["load_s"] > 0 and "non_lora_trainables.bin" in result["files_bytes"]
