"""``load_pretrained_model`` on full checkpoints (LoRA and projector runs: tests/train)."""

from __future__ import annotations

import pytest
import torch

from llava.mm_utils import get_model_name_from_path
from llava.model.builder import checkpoint_kind, load_pretrained_model


def test_loads_full_checkpoint_on_cpu(tiny_llava_dir):
    name = get_model_name_from_path(str(tiny_llava_dir))
    tokenizer, model, processor, context_len = load_pretrained_model(str(tiny_llava_dir), None, name, device="cpu")
    assert model.dtype == torch.float32
    assert model.get_vision_tower().is_loaded
    assert processor.crop_size["height"] == 32
    assert context_len == 2048
    assert not model.training
    assert tokenizer.bos_token_id == 1


def test_cuda_request_falls_back_to_cpu_without_cuda(tiny_llava_dir, monkeypatch, caplog):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    _, model, _, _ = load_pretrained_model(str(tiny_llava_dir), None, "llava-tiny", device="cuda")
    assert model.device.type == "cpu"
    assert "CUDA is not available" in caplog.text


def test_dtype_override(tiny_llava_dir):
    _, model, _, _ = load_pretrained_model(
        str(tiny_llava_dir), None, "llava-tiny", device="cpu", torch_dtype=torch.bfloat16
    )
    assert model.dtype == torch.bfloat16
    assert model.get_vision_tower().dtype == torch.bfloat16


def test_kind_is_decided_by_files_before_names(tmp_path):
    (tmp_path / "run").mkdir()
    assert checkpoint_kind(tmp_path / "run", None, "llava-x") == "full"
    assert checkpoint_kind(tmp_path / "run", "base", "llava-x-lora") == "lora"
    (tmp_path / "run" / "adapter_config.json").write_text("{}")
    assert checkpoint_kind(tmp_path / "run", "base", "my-run") == "lora"


def test_adapter_without_base_is_a_clear_error(tmp_path):
    (tmp_path / "adapter_config.json").write_text("{}")
    with pytest.raises(ValueError, match="pass --model-base"):
        load_pretrained_model(str(tmp_path), None, "run", device="cpu")


def test_other_keyword_arguments_go_to_from_pretrained_as_lmms_eval_passes_them(tiny_llava_dir):
    """lmms-eval's ``llava`` model.

    It calls ``load_pretrained_model(path, None, name, device_map=..., attn_implementation=...)``.
    """
    _, model, _, _ = load_pretrained_model(
        str(tiny_llava_dir),
        None,
        "llava-tiny",
        device_map="cpu",
        device="cpu",
        attn_implementation="eager",
        torch_dtype=torch.bfloat16,
    )
    assert model.config._attn_implementation == "eager"
    assert model.dtype == torch.bfloat16
    _, default, _, _ = load_pretrained_model(str(tiny_llava_dir), None, "llava-tiny", device="cpu")
    assert default.config._attn_implementation == "sdpa"
