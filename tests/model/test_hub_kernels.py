"""No Hub kernels unless asked for: every project load passes ``use_kernels`` (False by default),
and the opt-in flags pass True. ``tests/conftest.py`` also fails any test in which the project's
code loads a model without saying ``use_kernels``; the first test shows that guard can fail."""

from __future__ import annotations

import argparse
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from llava.model import LlavaLlamaForCausalLM
from llava.model.builder import load_pretrained_model
from llava.model.hub_kernels import kernel_kwargs, with_kernel_choice

ROOT = Path(__file__).resolve().parents[2]


def test_the_suite_guard_fails_a_project_load_that_leaves_the_default(tiny_llava_dir):
    code = compile(
        f"LlavaLlamaForCausalLM.from_pretrained({str(tiny_llava_dir)!r})", str(ROOT / "llava" / "x.py"), "exec"
    )
    with pytest.raises(AssertionError, match="without use_kernels"):
        exec(code, {"LlavaLlamaForCausalLM": LlavaLlamaForCausalLM})


def test_kernel_kwargs_say_it_out_loud():
    assert kernel_kwargs() == {"use_kernels": False} and kernel_kwargs(True) == {"use_kernels": True}
    assert with_kernel_choice({"dtype": torch.float32}) == {"dtype": torch.float32, "use_kernels": False}
    assert with_kernel_choice({"use_kernels": True})["use_kernels"] is True


@pytest.fixture()
def seen(monkeypatch):
    """Every from_pretrained call's use_kernels, by class name."""
    calls: list[tuple[str, object]] = []
    from transformers.modeling_utils import PreTrainedModel

    original = PreTrainedModel.from_pretrained.__func__

    def record(cls, *args, **kwargs):
        calls.append((cls.__name__, kwargs.get("use_kernels", "missing")))
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(PreTrainedModel, "from_pretrained", classmethod(record))
    return calls


def test_answering_loads_pass_false_and_the_opt_in_passes_true(tiny_llava_dir, seen):
    load_pretrained_model(str(tiny_llava_dir), None, "llava-tiny", device="cpu")
    assert seen and all(value is False for _, value in seen), seen
    assert {name for name, _ in seen} == {"LlavaLlamaForCausalLM", "CLIPVisionModel"}
    seen.clear()
    load_pretrained_model(str(tiny_llava_dir), None, "llava-tiny", device="cpu", use_kernels=True)
    assert ("LlavaLlamaForCausalLM", True) in seen and ("CLIPVisionModel", False) in seen


def test_training_load_passes_the_flag(tiny_llava_dir, seen):
    from llava.train.model_setup import load_language_model

    training_args = SimpleNamespace(cache_dir=None, bf16=False, fp16=False, bits=16, device="cpu")
    for flag in (False, True):
        seen.clear()
        model_args = SimpleNamespace(
            model_name_or_path=str(tiny_llava_dir), vision_tower="tower", freeze_backbone=False, use_kernels=flag
        )
        load_language_model(model_args, training_args)
        assert seen == [("LlavaLlamaForCausalLM", flag)]


def test_the_flags_parse_in_both_spellings():
    from llava.eval.model_vqa import add_model_arguments
    from llava.train.arguments import parse_args

    parser = argparse.ArgumentParser()
    add_model_arguments(parser)
    assert parser.parse_args([]).use_kernels is False
    assert parser.parse_args(["--use-kernels"]).use_kernels is True
    assert parser.parse_args(["--use_kernels"]).use_kernels is True
    assert "use_kernels" in {field for field in parse_args.__globals__["ModelArguments"].__dataclass_fields__}
