"""``python -m llava.eval.run_llava``: upstream's quick start, its flags, several images, its ``eval_model(args)``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from llava.eval import run_llava

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def images(colour_vqa_dir):
    return sorted((colour_vqa_dir / "images").iterdir())[:2]


def test_upstream_command_line_prints_the_answer(tiny_llava_dir, images):
    command = [
        sys.executable,
        "-m",
        "llava.eval.run_llava",
        "--model-path",
        str(tiny_llava_dir),
        "--image-file",
        str(images[0]),
        "--query",
        "What colour is the shape?",
        "--conv-mode",
        "vicuna_v1",
        "--temperature",
        "0",
        "--top_p",
        "0.9",
        "--num_beams",
        "1",
        "--max_new_tokens",
        "4",
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
    expected = run_llava.main(
        [
            "--model-path",
            str(tiny_llava_dir),
            "--image-file",
            str(images[0]),
            "--query",
            "What colour is the shape?",
            "--conv-mode",
            "vicuna_v1",
            "--temperature",
            "0",
            "--max_new_tokens",
            "4",
            "--device",
            "cpu",
        ]
    )
    assert expected and result.stdout.strip().endswith(expected)


def test_readme_style_args_object_and_several_images(tiny_llava_dir, images, capsys):
    """Upstream's README passes ``type('Args', (), {...})()``; several images are split by --sep."""
    args = type(
        "Args",
        (),
        {
            "model_path": str(tiny_llava_dir),
            "model_base": None,
            "model_name": "llava-tiny",
            "query": "<image-placeholder> and <image-placeholder>: which colours?",
            "conv_mode": None,
            "image_file": f"{images[0]};{images[1]}",
            "sep": ";",
            "temperature": 0,
            "top_p": None,
            "num_beams": 1,
            "max_new_tokens": 4,
            "device": "cpu",
        },
    )()
    answer = run_llava.eval_model(args)
    assert isinstance(answer, str) and capsys.readouterr().out.strip() == answer


def test_query_with_images():
    assert run_llava.query_with_images("Q?", 1, False) == "<image>\nQ?"
    assert run_llava.query_with_images("Q?", 2, True) == "<im_start><image><im_end>\n" * 2 + "Q?"
    assert run_llava.query_with_images("A <image-placeholder> B", 1, False) == "A <image> B"
    with pytest.raises(ValueError, match="1 <image-placeholder> but --image-file names 2"):
        run_llava.query_with_images("A <image-placeholder>", 2, False)


@pytest.mark.parametrize(
    "name, mode",
    [
        ("llava-v1.5-7b", "llava_v1"),
        ("llava-llama-2-13b-chat", "llava_llama_2"),
        ("llava-v1.6-mistral-7b", "mistral_instruct"),
        ("llava-tiny", "llava_v0"),
        ("llava-v1.6-34b", "chatml_direct"),
        ("mpt-7b", "mpt"),
    ],
)
def test_template_chosen_from_the_name_as_upstream(name, mode):
    assert run_llava.conv_mode_for(name) == mode


def test_missing_image_is_named(tiny_llava_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.jpg"):
        run_llava.main(
            [
                "--model-path",
                str(tiny_llava_dir),
                "--image-file",
                str(tmp_path / "nowhere.jpg"),
                "--query",
                "q",
                "--device",
                "cpu",
            ]
        )
