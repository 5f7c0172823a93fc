"""A LoRA run records its base (name + weight fingerprint) and refuses to load on another base
of the same shape, unless the override is given."""

from __future__ import annotations

import json

import pytest
import torch
from lora_fixture import train_tiny_lora

from llava.model.base_record import CONFIG_KEY, fingerprint_embeddings
from llava.model.builder import load_pretrained_model
from llava.model.tiny import build_tiny_llava


@pytest.fixture(scope="module")
def lora_run(tiny_llava_dir, colour_vqa_dir, tmp_path_factory):
    return train_tiny_lora(tmp_path_factory.mktemp("lora"), tiny_llava_dir, colour_vqa_dir)


@pytest.fixture(scope="module")
def other_base(tmp_path_factory):
    """Same architecture and shapes as the tiny base, other random weights."""
    return build_tiny_llava(tmp_path_factory.mktemp("other") / "llava-tiny-other", seed=1)


def test_fingerprint_agrees_across_dtypes_and_differs_between_bases():
    weight = torch.randn(300, 16, dtype=torch.float16)
    assert fingerprint_embeddings(weight) == fingerprint_embeddings(weight.float())
    assert fingerprint_embeddings(weight) == fingerprint_embeddings(weight.to(torch.bfloat16))
    assert fingerprint_embeddings(weight) == fingerprint_embeddings(torch.cat([weight, weight[:5]]))  # resized
    assert fingerprint_embeddings(weight) != fingerprint_embeddings(weight * 1.01)


def test_the_run_records_its_base_in_every_config(lora_run, tiny_llava_dir):
    record = json.loads((lora_run / "config.json").read_text())[CONFIG_KEY]
    assert record["name"] == str(tiny_llava_dir) and record["fingerprint"].startswith("sha256:")


def test_the_right_base_loads_and_a_wrong_one_is_refused_with_both_names(lora_run, tiny_llava_dir, other_base):
    load_pretrained_model(str(lora_run), str(tiny_llava_dir), "llava-tiny-task-lora", device="cpu")
    with pytest.raises(ValueError) as refused:
        load_pretrained_model(str(lora_run), str(other_base), "llava-tiny-task-lora", device="cpu")
    message = str(refused.value)
    assert f"trained on base {tiny_llava_dir}" in message and f"--model-base {other_base}" in message
    assert "--allow-base-mismatch" in message
    _, model, _, _ = load_pretrained_model(
        str(lora_run), str(other_base), "llava-tiny-task-lora", device="cpu", allow_base_mismatch=True
    )
    assert model is not None


def test_runs_without_a_record_load_as_before(lora_run, other_base, tmp_path):
    import shutil

    old = tmp_path / "llava-old-lora"
    shutil.copytree(lora_run, old)
    config = json.loads((old / "config.json").read_text())
    del config[CONFIG_KEY]
    (old / "config.json").write_text(json.dumps(config))
    load_pretrained_model(str(old), str(other_base), "llava-old-lora", device="cpu")  # upstream's runs: unchecked
