"""``python -m llava.eval.model_vqa_loader``: upstream's flags, batched underneath, model_vqa's answers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from llava.eval import model_vqa, model_vqa_loader

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def question_file(colour_vqa_dir, tmp_path_factory):
    entries = json.loads((colour_vqa_dir / "train.json").read_text())
    path = tmp_path_factory.mktemp("questions") / "questions.jsonl"
    with open(path, "w") as handle:
        for entry in entries[:6]:
            text = entry["conversations"][0]["value"].replace("<image>\n", "")
            handle.write(json.dumps({"question_id": entry["id"], "image": entry["image"], "text": text}) + "\n")
    return path


def upstream_flags(model_dir, questions, images, answers):
    """As upstream's scripts/v1_5/eval/*.sh pass them."""
    return [
        "--model-path",
        str(model_dir),
        "--question-file",
        str(questions),
        "--image-folder",
        str(images),
        "--answers-file",
        str(answers),
        "--temperature",
        "0",
        "--conv-mode",
        "vicuna_v1",
        "--num-chunks",
        "1",
        "--chunk-idx",
        "0",
        "--max_new_tokens",
        "6",
    ]


def read(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def test_upstream_command_line_answers_like_model_vqa(tiny_llava_dir, colour_vqa_dir, question_file, tmp_path):
    answers = tmp_path / "answers" / "loader.jsonl"
    command = [
        sys.executable,
        "-m",
        "llava.eval.model_vqa_loader",
        *upstream_flags(tiny_llava_dir, question_file, colour_vqa_dir / "images", answers),
        "--top_p",
        "0.9",
        "--num_beams",
        "1",
        "--device",
        "cpu",
    ]
    result = subprocess.run(
        command,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    batched = read(answers)  # default batch size 8
    single = read(
        model_vqa.main(
            [
                "--model-path",
                str(tiny_llava_dir),
                "--question-file",
                str(question_file),
                "--image-folder",
                str(colour_vqa_dir / "images"),
                "--answers-file",
                str(tmp_path / "single.jsonl"),
                "--conv-mode",
                "vicuna_v1",
                "--temperature",
                "0",
                "--max-new-tokens",
                "6",
                "--device",
                "cpu",
            ]
        )
    )
    assert [(r["question_id"], r["prompt"], r["text"]) for r in batched] == [
        (r["question_id"], r["prompt"], r["text"]) for r in single
    ]
    assert set(batched[0]) == {"question_id", "prompt", "text", "answer_id", "model_id", "metadata"}


def test_rerun_starts_the_answers_file_afresh_unless_resume(tiny_llava_dir, colour_vqa_dir, question_file, tmp_path):
    answers = tmp_path / "a.jsonl"
    answers.write_text(json.dumps({"question_id": "stale", "text": "x"}) + "\n")
    flags = upstream_flags(tiny_llava_dir, question_file, colour_vqa_dir / "images", answers) + ["--device", "cpu"]
    model_vqa_loader.main(flags)
    first = read(answers)
    assert "stale" not in {r["question_id"] for r in first} and len(first) == 6
    model_vqa_loader.main([*flags, "--resume"])
    assert read(answers) == first  # everything was answered already


def test_defaults_are_upstreams():
    from llava.eval.model_vqa import UPSTREAM_CONV_MODE

    args = model_vqa_loader.build_parser().parse_args([])
    assert (args.max_new_tokens, args.temperature, args.num_chunks, args.chunk_idx) == (128, 0.2, 1, 0)
    # no --conv-mode: the run's recorded template, else upstream's default
    assert args.conv_mode is None and UPSTREAM_CONV_MODE == "llava_v1"
