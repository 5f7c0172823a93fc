"""A LoRA run records its base (name + weight fingerprint) and refuses to load on another base
of the same shape, unless the override is given."""

from __future__ import annotations

import json

import pytest
import torch
from lora_fixture import train_tiny_lora

from llava.model.base_record import (
    CONFIG_KEY,
    base_name_for_record,
    decode_sample,
    embedding_sample,
    encode_sample,
    fingerprint_embeddings,
    sample_difference,
)
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


def test_the_sample_survives_double_rounding_that_breaks_the_fingerprint():
    """The GPU node's failure: fp32 base trained in bf16, answered in fp16 (fp32 -> fp16 -> bf16)."""
    torch.manual_seed(3)
    weight = torch.randn(300, 64) * 0.02
    trained, answered = weight.to(torch.bfloat16), weight.to(torch.float16)
    assert fingerprint_embeddings(trained) != fingerprint_embeddings(answered)  # why the hash alone failed
    recorded = decode_sample(encode_sample(embedding_sample(trained)))
    assert sample_difference(recorded, embedding_sample(answered)) <= 1.0
    assert sample_difference(recorded, embedding_sample(torch.randn(300, 64) * 0.02)) > 1.0
    assert sample_difference(recorded, embedding_sample(torch.cat([answered, answered[:9]]))) <= 1.0  # resized


def test_a_garbled_sample_is_an_error_naming_it():
    with pytest.raises(ValueError, match="not an embedding sample"):
        decode_sample("f32:2x2:AAAA")


def test_the_run_records_its_base_in_every_config(lora_run, tiny_llava_dir):
    record = json.loads((lora_run / "config.json").read_text())[CONFIG_KEY]
    assert record["name"] == str(tiny_llava_dir.resolve()) and record["fingerprint"].startswith("sha256:")
    assert record["sample"].startswith("f32:16x")


def test_a_relative_base_is_recorded_absolute_and_a_hub_id_as_given(tmp_path, monkeypatch):
    (tmp_path / "base").mkdir()
    monkeypatch.chdir(tmp_path)
    assert base_name_for_record("base") == str(tmp_path / "base")
    assert base_name_for_record("liuhaotian/llava-v1.5-7b") == "liuhaotian/llava-v1.5-7b"


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
