"""Folder checks before anything loads: output folder, local model and vision tower folders."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

from llava.train.input_checks import check_run_inputs, looks_local


def problems(
    tmp_path,
    output_dir=None,
    model="liuhaotian/llava-v1.5-7b",
    tower="openai/clip-vit-large-patch14-336",
    max_nonfinite_steps=3,
):
    model_args = SimpleNamespace(model_name_or_path=model, vision_tower=tower)
    training_args = SimpleNamespace(
        output_dir=str(output_dir or tmp_path / "new" / "run"), max_nonfinite_steps=max_nonfinite_steps
    )
    return check_run_inputs(model_args, SimpleNamespace(), training_args)


def test_hub_ids_and_a_creatable_output_dir_pass(tmp_path):
    assert problems(tmp_path) == []
    assert not looks_local("liuhaotian/llava-v1.5-7b") and looks_local("./models/x") and looks_local("/a/b")


def test_output_dir_that_is_a_file_or_not_writable(tmp_path):
    (tmp_path / "taken").write_text("x")
    assert problems(tmp_path, tmp_path / "taken") == [
        f"--output_dir {tmp_path / 'taken'} is a file, not a folder: remove it or choose another --output_dir"
    ]
    assert "is a file, so the folder cannot be created" in problems(tmp_path, tmp_path / "taken" / "run")[0]
    if os.geteuid() == 0:
        pytest.skip("root can write anywhere")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    assert "is not writable by this user" in problems(tmp_path, locked / "run")[0]


def test_local_model_folders_must_hold_config_json(tmp_path):
    (tmp_path / "model").mkdir()
    found = problems(tmp_path, model=str(tmp_path / "model"), tower=str(tmp_path / "no-tower"))
    assert found[0].startswith(f"--model_name_or_path {tmp_path / 'model'} has no config.json")
    assert found[1].startswith(f"--vision_tower {tmp_path / 'no-tower'}: no such folder")
    (tmp_path / "model" / "config.json").write_text("{}")
    assert problems(tmp_path, model=str(tmp_path / "model")) == []
    assert "use 1 or more" in problems(tmp_path, max_nonfinite_steps=0)[0]
