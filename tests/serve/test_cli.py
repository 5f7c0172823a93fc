"""``python -m llava.serve.cli``: upstream's flags, piped questions answered, end of input exits 0."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from llava.serve.cli import build_parser, chat_loop, load_image

ROOT = Path(__file__).resolve().parents[2]
ENV = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")


@pytest.fixture(scope="module")
def picture(tmp_path_factory):
    from llava.data.synthetic import draw

    path = tmp_path_factory.mktemp("cli") / "red.png"
    draw("red", "circle").save(path)
    return path


def test_upstream_load_image_gives_rgb(picture):
    image = load_image(str(picture))
    assert image.mode == "RGB" and image.size == (40, 32)


def test_upstream_flags_and_defaults():
    args = build_parser().parse_args(["--image-file", "x.jpg"])
    assert (args.model_path, args.model_base, args.device, args.conv_mode) == ("facebook/opt-350m", None, "cuda", None)
    assert (args.temperature, args.max_new_tokens, args.load_8bit, args.load_4bit, args.debug) == (
        0.2,
        512,
        False,
        False,
        False,
    )
    with pytest.raises(SystemExit):
        build_parser().parse_args([])  # --image-file is required, as upstream


def test_piped_questions_are_answered_in_one_conversation_and_end_of_input_exits_0(tiny_llava_dir, picture):
    command = [
        sys.executable,
        "-m",
        "llava.serve.cli",
        "--model-path",
        str(tiny_llava_dir),
        "--image-file",
        str(picture),
        "--device",
        "cpu",
        "--conv-mode",
        "vicuna_v1",
        "--temperature",
        "0",
        "--max-new-tokens",
        "6",
        "--debug",
    ]
    result = subprocess.run(
        command,
        input="What colour is the shape?\nAnd the shape?\n",
        env=ENV,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert out.count("USER: ") >= 3 and out.count("ASSISTANT: ") >= 2
    assert out.rstrip().endswith("exit...")
    prompts = [line for line in out.splitlines() if line.startswith("{'prompt'")]
    assert len(prompts) == 2
    assert prompts[0].count("<image>") == 1 and prompts[1].count("<image>") == 1, "the picture is sent once"
    assert "And the shape?" in prompts[1] and "What colour is the shape?" in prompts[1]


def test_unreadable_picture_exits_2_with_the_file_named(tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"nope")
    result = subprocess.run(
        [sys.executable, "-m", "llava.serve.cli", "--image-file", str(broken)],
        env=ENV,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "Cannot read broken.jpg" in result.stderr and "Traceback" not in result.stderr


class _ScriptedSession:
    """Stands in for ChatSession: replies grow piece by piece; one question is too long."""

    conv_mode = "llava_v0"

    def __init__(self):
        self.asked = []

    def prompt(self, question):
        return f"prompt({question})"

    def stream(self, question, settings):
        from llava.serve.chat import ChatInputError

        self.asked.append(question)
        if question == "long":
            raise ChatInputError("The prompt is too long")
        yield from ("a", "a re", "a red circle")


def test_chat_loop_streams_deltas_reports_input_errors_and_stops_on_an_empty_line():
    session = _ScriptedSession()
    out = io.StringIO()
    chat_loop(session, None, io.StringIO("first\nlong\n\nnever asked\n"), out)
    assert session.asked == ["first", "long"]
    assert out.getvalue() == (
        "Human: Assistant: a red circle\nHuman: Assistant: \n[The prompt is too long]\nHuman: exit...\n"
    )


@pytest.mark.slow
def test_a_lora_run_chats_with_its_base(tmp_path_factory, tiny_llava_dir, colour_vqa_dir, picture):
    from lora_fixture import train_tiny_lora

    run = train_tiny_lora(tmp_path_factory.mktemp("cli-lora"), tiny_llava_dir, colour_vqa_dir)
    command = [
        sys.executable,
        "-m",
        "llava.serve.cli",
        "--model-path",
        str(run),
        "--model-base",
        str(tiny_llava_dir),
        "--image-file",
        str(picture),
        "--device",
        "cpu",
        "--temperature",
        "0",
        "--max-new-tokens",
        "4",
        "--conv-mode",
        "vicuna_v1",
    ]
    result = subprocess.run(
        command, input="What colour is the shape?\n", env=ENV, cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "ASSISTANT: " in result.stdout and result.stdout.rstrip().endswith("exit...")
