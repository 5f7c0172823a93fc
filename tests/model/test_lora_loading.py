"""``load_pretrained_model`` on LoRA runs: ours, intermediate checkpoints, upstream's exact layout,
4-bit, and every mismatch as a clear error (never a silently random projector)."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from lora_fixture import train_tiny_lora

from llava.mm_utils import get_model_name_from_path
from llava.model.builder import load_pretrained_model
from llava.model.lora_loading import NON_LORA_FILE


@pytest.fixture(scope="module")
def lora_run(tiny_llava_dir, colour_vqa_dir, tmp_path_factory):
    return train_tiny_lora(tmp_path_factory.mktemp("lora"), tiny_llava_dir, colour_vqa_dir)


def projector_of(model):
    return {k: v for k, v in model.state_dict().items() if "mm_projector" in k}


def saved_projector(run):
    state = torch.load(run / NON_LORA_FILE, weights_only=True)
    return {k.removeprefix("base_model.model."): v for k, v in state.items()}


def test_lora_run_loads_with_its_projector_and_merged_adapter(lora_run, tiny_llava_dir):
    name = get_model_name_from_path(str(lora_run))
    assert "lora" in name
    _, model, processor, _ = load_pretrained_model(str(lora_run), str(tiny_llava_dir), name, device="cpu")
    expected = saved_projector(lora_run)
    for key, value in projector_of(model).items():
        assert torch.equal(value, expected[key]), key
    assert not any("lora_" in key for key in model.state_dict())  # merged
    assert processor is not None and model.get_vision_tower().is_loaded

    base = load_pretrained_model(str(tiny_llava_dir), None, "llava-tiny", device="cpu")[1]
    moved = [k for k, v in base.state_dict().items() if "q_proj" in k and not torch.equal(v, model.state_dict()[k])]
    assert moved, "the adapter was not merged into the weights"


def test_adapter_files_decide_whatever_the_name(lora_run, tiny_llava_dir, tmp_path):
    renamed = tmp_path / "my-finetune"
    shutil.copytree(lora_run, renamed)
    _, model, _, _ = load_pretrained_model(str(renamed), str(tiny_llava_dir), "my-finetune", device="cpu")
    expected = saved_projector(lora_run)
    assert all(torch.equal(v, expected[k]) for k, v in projector_of(model).items())


def test_intermediate_checkpoint_folder_loads(lora_run, tiny_llava_dir, tmp_path):
    checkpoint = tmp_path / "run" / "checkpoint-6"
    shutil.copytree(lora_run, checkpoint)
    name = get_model_name_from_path(str(checkpoint))
    assert name == "run_checkpoint-6"
    _, model, _, _ = load_pretrained_model(str(checkpoint), str(tiny_llava_dir), name, device="cpu")
    assert projector_of(model)


def test_upstream_layout_with_bin_adapter(lora_run, tiny_llava_dir, tmp_path):
    """What upstream (peft 0.6, torch.save) writes: adapter_model.bin, no adapter name in keys."""
    from safetensors.torch import load_file

    upstream = tmp_path / "llava-v1.5-7b-task-lora"
    upstream.mkdir()
    for name in ("config.json", "adapter_config.json", NON_LORA_FILE):
        shutil.copy(lora_run / name, upstream / name)
    torch.save(load_file(str(lora_run / "adapter_model.safetensors")), upstream / "adapter_model.bin")
    ours = load_pretrained_model(str(lora_run), str(tiny_llava_dir), "a-lora", device="cpu")[1]
    theirs = load_pretrained_model(str(upstream), str(tiny_llava_dir), upstream.name, device="cpu")[1]
    for key, value in ours.state_dict().items():
        assert torch.equal(value, theirs.state_dict()[key]), key


def test_load_4bit_on_cpu(lora_run, tiny_llava_dir):
    pytest.importorskip("bitsandbytes")
    _, model, _, _ = load_pretrained_model(str(lora_run), str(tiny_llava_dir), "x-lora", load_4bit=True, device="cpu")
    assert any("Linear4bit" in type(m).__name__ for m in model.modules())
    projector = model.get_model().mm_projector
    assert all(p.dtype.is_floating_point for p in projector.parameters())


def test_missing_projector_file_is_an_error(lora_run, tiny_llava_dir, tmp_path):
    broken = tmp_path / "llava-broken-lora"
    shutil.copytree(lora_run, broken)
    (broken / NON_LORA_FILE).unlink()
    with pytest.raises(FileNotFoundError, match="non_lora_trainables.bin is missing"):
        load_pretrained_model(str(broken), str(tiny_llava_dir), broken.name, device="cpu")


def test_base_that_does_not_fit_is_an_error(lora_run, tmp_path):
    from llava.model.tiny import build_tiny_llava

    other = build_tiny_llava(tmp_path / "other-base")
    config = json.loads((other / "config.json").read_text())
    config["hidden_size"], config["intermediate_size"] = 32, 64
    (other / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="does not fit this run: hidden_size"):
        load_pretrained_model(str(lora_run), str(other), "llava-lora", device="cpu")


def test_unknown_non_lora_key_is_an_error(lora_run, tiny_llava_dir, tmp_path):
    broken = tmp_path / "llava-odd-lora"
    shutil.copytree(lora_run, broken)
    state = torch.load(broken / NON_LORA_FILE, weights_only=True)
    state["base_model.model.model.resampler.weight"] = torch.zeros(2)
    torch.save(state, broken / NON_LORA_FILE)
    with pytest.raises(ValueError, match="unknown keys"):
        load_pretrained_model(str(broken), str(tiny_llava_dir), broken.name, device="cpu")


def test_qlora_run_loads_in_full_precision_unless_asked(lora_run, tiny_llava_dir, tmp_path):
    """A QLoRA run's config.json records its bitsandbytes settings; loading ignores them."""
    qlora = tmp_path / "llava-tiny-task-qlora"
    shutil.copytree(lora_run, qlora)
    config = json.loads((qlora / "config.json").read_text())
    config["quantization_config"] = {
        "quant_method": "bitsandbytes",
        "load_in_4bit": True,
        "bnb_4bit_quant_type": "nf4",
        "bnb_4bit_use_double_quant": True,
        "llm_int8_skip_modules": [".*mm_projector"],
    }
    (qlora / "config.json").write_text(json.dumps(config))
    _, model, _, _ = load_pretrained_model(str(qlora), str(tiny_llava_dir), qlora.name, device="cpu")
    assert not any("Linear4bit" in type(m).__name__ for m in model.modules())
    assert model.dtype == torch.float32


def test_a_damaged_adapter_or_planted_projector_pickle_is_named(lora_run, tiny_llava_dir, tmp_path):
    import os
    import shutil

    run = tmp_path / "llava-damaged-lora"
    shutil.copytree(lora_run, run)
    adapter = run / "adapter_model.safetensors"
    adapter.write_bytes(adapter.read_bytes()[:100])  # truncated in a copy
    with pytest.raises(ValueError, match="adapter_model.safetensors: not a readable safetensors file"):
        load_pretrained_model(str(run), str(tiny_llava_dir), run.name, device="cpu")
    shutil.copy(lora_run / "adapter_model.safetensors", adapter)

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'ran'}",))

    torch.save(Payload(), run / "non_lora_trainables.bin")
    with pytest.raises(ValueError, match="non_lora_trainables.bin: not loadable as weights only"):
        load_pretrained_model(str(run), str(tiny_llava_dir), run.name, device="cpu")
    assert not (tmp_path / "ran").exists()
