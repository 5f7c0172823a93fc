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
