"""scripts/gpu_check.sh, the one GPU acceptance command: its stages, the one 7B model every
benchmark reuses, a clear refusal without CUDA, and the report's table and exit status."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "gpu_check.sh"


def run(env: dict, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(SCRIPT)], cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, check=check
    )


def test_dry_run_lists_every_stage_and_builds_the_7b_model_once(tmp_path):
    result = run({"DRY_RUN": "1", "OUT": str(tmp_path / "out")})
    stages = dict(line.split(": ", 1) for line in result.stdout.splitlines())
    assert list(stages) == [
        "tests", "main-model", "main-data", "main", "bench-build", "bench-recipe", "bench-plain", "bench-answer",
        "bench-answer-static",
    ]  # fmt: skip
    assert "-m gpu tests" in stages["tests"]
    main = shlex.split(stages["main"])
    assert "MODE=gpu" in main and "EPOCHS=12" in main and main[-1] == "scripts/finetune_qlora_okvqa.sh"
    model = str(tmp_path / "out" / "llava-v1.5-7b-shapes")
    assert "--device cuda" in stages["bench-build"] and model in stages["bench-build"]
    for name in ("bench-recipe", "bench-plain", "bench-answer", "bench-answer-static"):
        words = shlex.split(stages[name])
        assert words[words.index("--model-dir") + 1] == model, name
    assert "--deepspeed scripts/zero2.json" in stages["bench-recipe"]
    assert "--gradient-checkpointing auto" in stages["bench-recipe"]  # as the main script trains
    assert "--gradient-checkpointing True" in stages["bench-plain"]  # upstream's flags
    assert "--kv-cache static" in stages["bench-answer-static"]
    assert "USE_HUB_KERNELS" not in SCRIPT.read_text()  # the project must not need it


def test_without_cuda_it_refuses_in_one_line(tmp_path):
    result = run({"OUT": str(tmp_path / "out")}, check=False)  # the suite hides CUDA
    assert result.returncode == 2
    assert result.stderr.startswith("error: no CUDA device") and len(result.stderr.splitlines()) == 1


def _report(folder: Path, stages: str) -> subprocess.CompletedProcess:
    (folder / "stages.tsv").write_text(stages)
    (folder / "versions.json").write_text(json.dumps({"device": "NVIDIA H200"}))
    score = folder / "main" / "llava-tiny-okvqa-qlora" / "eval"
    score.mkdir(parents=True, exist_ok=True)
    (score / "okvqa_val_score.json").write_text(json.dumps({"vqa_accuracy": 71.5}))
    row = {"median_step_s": 0.9, "samples_per_s": 17.7, "tokens_per_s": 11300.0, "peak_memory_gib": 30.2, "mfu": 0.4}
    row.update(gradient_checkpointing=False, phases_ms={"data wait": 1.5, "vision tower": 40.0, "backward": 500.0})
    (folder / "bench_recipe.json").write_text(json.dumps(row))
    (folder / "bench_answer.json").write_text(json.dumps({"rows": [{"batch_size": 32, "questions_per_s": 31.0}]}))
    static = {"rows": [{"batch_size": 64, "questions_per_s": 61.0}]}
    (folder / "bench_answer_static.json").write_text(json.dumps(static))
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gpu_check_report.py"), str(folder)], capture_output=True, text=True
    )


def test_report_prints_one_table_writes_one_json_and_fails_on_a_failed_stage(tmp_path):
    ok = _report(tmp_path, "tests\t0\t40\nmain\t0\t300\n")
    assert ok.returncode == 0, ok.stderr
    assert "GPU check on NVIDIA H200" in ok.stdout and "VQA accuracy 71.5" in ok.stdout
    assert "| recipe (DeepSpeed ZeRO-2) | off | 0.900 s | 17.70 | 11,300 | 30.2 GiB | 0.40 |" in ok.stdout
    assert "| phase (ms) | recipe |" in ok.stdout and "| vision tower | 40.0 |" in ok.stdout
    assert "| answering, batch 32, dynamic KV cache | | | 31.0 questions/s |" in ok.stdout
    assert "| answering, batch 64, static KV cache | | | 61.0 questions/s |" in ok.stdout
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert report["main_job_vqa_accuracy"] == 71.5 and report["plain"] is None
    failed = _report(tmp_path, "tests\t1\t40\nmain\t0\t300\n")
    assert failed.returncode == 1 and "failed: tests" in failed.stderr
