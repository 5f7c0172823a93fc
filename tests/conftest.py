"""Shared fixtures: tiny tokenizer and models built in-process, never downloaded."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_tokenizer_dir(tmp_path_factory):
    """A folder holding the tiny SentencePiece Llama tokenizer (built once per session)."""
    from llava.model.tiny import build_tiny_tokenizer

    out = tmp_path_factory.mktemp("tiny-tokenizer")
    build_tiny_tokenizer(out)
    return out


@pytest.fixture()
def tiny_tokenizer(tiny_tokenizer_dir):
    """A fresh tokenizer as upstream training configures it: right padding, pad = unk."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(
        str(tiny_tokenizer_dir), use_fast=False, padding_side="right", model_max_length=512
    )
    tokenizer.pad_token = tokenizer.unk_token
    return tokenizer


@pytest.fixture(scope="session")
def tiny_llava_dir(tmp_path_factory):
    """A tiny random LLaVA checkpoint in upstream's layout (read-only: copy before changing)."""
    from llava.model.tiny import build_tiny_llava

    return build_tiny_llava(tmp_path_factory.mktemp("tiny-llava") / "llava-tiny")


@pytest.fixture()
def tiny_llava(tiny_llava_dir):
    """The tiny LLaVA with its CLIP tower loaded, in eval mode, float32 on the CPU."""
    from llava.model import LlavaLlamaForCausalLM

    model = LlavaLlamaForCausalLM.from_pretrained(str(tiny_llava_dir))
    model.get_vision_tower().load_model()
    return model.eval()


@pytest.fixture(scope="session")
def colour_vqa_dir(tmp_path_factory):
    """Read-only small LLaVA-format VQA set: 24 colour questions + 2 text-only entries."""
    from llava.data.synthetic import write_llava_vqa

    return write_llava_vqa(tmp_path_factory.mktemp("colour-vqa"))
