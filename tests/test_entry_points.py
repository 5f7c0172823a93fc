"""One line for a user's mistake (llava/entry.py): every entry point, run as users run it, given
the ordinary mistakes, exits 2 with one ``error:`` line naming the file or flag, and no traceback.
``--debug`` / ``LLAVA_DEBUG=1`` brings the traceback back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from offline import offline_env

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def place(tmp_path_factory, tiny_llava_dir):
    """A folder with what the mistakes need: questions, an empty question file, a file, a run, a CSV."""
    folder = tmp_path_factory.mktemp("mistakes")
    (folder / "q.jsonl").write_text('{"question_id": 1, "image": "a.png", "text": "q"}\n')
    (folder / "empty.jsonl").write_text("")
    (folder / "afile").write_text("not a folder")
    (folder / "existing").mkdir()
    (folder / "existing" / "x").write_text("")
    run = folder / "llava-fake-lora"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"model_type": "llava_llama"}))
    (run / "adapter_config.json").write_text("{}")
    subprocess.run(
        [sys.executable, "-m", "llava.data.synthetic", "--layout", "csv", "--out", str(folder / "csv"),
         "--train-size", "8", "--val-size", "4"],
        cwd=ROOT, check=True, capture_output=True, env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )  # fmt: skip
    assert (folder / "csv" / "csv" / "vqa.csv").is_file()
    return folder


def mistakes(place: Path, tiny: Path) -> dict[str, tuple[list[str], str]]:
    """name -> (command after ``python``, text the error line must hold)."""
    csv = place / "csv" / "csv" / "vqa.csv"  # what llava.data.synthetic --layout csv writes
    return {
        "model_vqa missing model": (
            ["-m", "llava.eval.model_vqa", "--model-path", "/missing", "--question-file", str(place / "q.jsonl"),
             "--answers-file", str(place / "a.jsonl"), "--device", "cpu"], "/missing"),
        "model_vqa empty questions": (
            ["-m", "llava.eval.model_vqa", "--model-path", str(tiny), "--question-file", str(place / "empty.jsonl"),
             "--answers-file", str(place / "a2.jsonl"), "--device", "cpu"], "empty.jsonl"),
        "model_vqa_loader missing model": (
            ["-m", "llava.eval.model_vqa_loader", "--model-path", "/missing", "--question-file",
             str(place / "q.jsonl"), "--answers-file", str(place / "a3.jsonl"), "--device", "cpu"], "/missing"),
        "run_llava URL without network": (
            ["-m", "llava.eval.run_llava", "--model-path", str(tiny), "--image-file", "http://example.invalid/a.png",
             "--query", "hi", "--device", "cpu"], "http://example.invalid/a.png"),
        "merge existing output": (
            ["scripts/merge_lora_weights.py", "--model-path", str(place / "llava-fake-lora"), "--model-base",
             str(tiny), "--save-model-path", str(place / "existing")], "existing"),
        "export missing model": (["-m", "llava.export_hf", "--model-path", "/missing", "--out", str(place / "x")],
                                 "/missing"),
        "converter output under a file": (
            ["-m", "llava.data.vqa", "--input", str(csv), "--out", str(place / "afile" / "sub")], "afile"),
        "preflight bad tokenizer": (
            ["-m", "llava.train.preflight", "--data_path", str(place / "q.jsonl"), "--tokenizer", "/bad/path"],
            "/bad/path"),
        "tiny model existing output": (["-m", "llava.model.tiny", "--out", str(place / "existing")], "existing"),
        "training missing data": (
            ["-m", "llava.train.train", "--model_name_or_path", str(tiny), "--data_path", "/missing/train.json",
             "--output_dir", str(place / "out"), "--report_to", "none"], "/missing/train.json"),
    }  # fmt: skip


NAMES = sorted(mistakes(Path("/p"), Path("/t")))


def _run(arguments: list[str], place: Path, **env: str) -> subprocess.CompletedProcess:
    base = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", WANDB_MODE="disabled", **env)
    return subprocess.run(
        [sys.executable, *arguments], cwd=ROOT, env=offline_env(place / "sockets.log", base),
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


@pytest.mark.parametrize("name", NAMES)
def test_a_mistake_is_one_line_and_exit_2(name, place, tiny_llava_dir):
    arguments, named = mistakes(place, tiny_llava_dir)[name]
    result = _run(arguments, place)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 2, result.stderr[-3000:]
    assert len(errors) == 1 and named in errors[0], result.stderr[-3000:]
    assert "Traceback" not in result.stderr


def test_debug_shows_the_traceback(place, tiny_llava_dir):
    arguments, _ = mistakes(place, tiny_llava_dir)["export missing model"]
    assert "Traceback" in _run([*arguments, "--debug"], place).stderr
    assert "Traceback" in _run(arguments, place, LLAVA_DEBUG="1").stderr
