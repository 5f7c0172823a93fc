"""Projector shapes and names, and the attention-kernel seam."""

from __future__ import annotations

import logging

import pytest
import torch

from llava.model.attention import resolve_attn_implementation
from llava.model.multimodal_projector.builder import build_projector, is_valid_projector_type


@pytest.mark.parametrize(
    "kind, names",
    [
        ("linear", {"weight", "bias"}),
        ("mlp2x_gelu", {"0.weight", "0.bias", "2.weight", "2.bias"}),
        ("mlp3x_gelu", {"0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"}),
    ],
)
def test_projector_parameter_names_match_upstream(kind, names):
    projector = build_projector(kind, 8, 16)
    assert set(projector.state_dict()) == names
    assert projector(torch.zeros(2, 3, 8)).shape == (2, 3, 16)


def test_identity_and_unknown_projectors():
    assert build_projector("identity", 8, 8)(torch.ones(1, 8)).sum() == 8
    assert is_valid_projector_type("mlp4x_gelu") and not is_valid_projector_type("mlp_gelu")
    with pytest.raises(ValueError, match="mlp<N>x_gelu"):
        build_projector("qformer", 8, 8)


def test_flash_attention_falls_back_to_sdpa_with_one_line(caplog, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with caplog.at_level(logging.INFO, logger="llava"):
        assert resolve_attn_implementation("flash_attention_2") == "sdpa"
    lines = [r for r in caplog.records if "FlashAttention-2 unavailable" in r.getMessage()]
    assert len(lines) == 1 and "no CUDA device" in lines[0].getMessage()
    assert lines[0].levelno == logging.INFO  # nothing to fix without a GPU: a note
    caplog.clear()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda: (9, 0))
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None if name == "flash_attn" else object())
    with caplog.at_level(logging.INFO, logger="llava"):
        assert resolve_attn_implementation("flash_attention_2") == "sdpa"
    lines = [r for r in caplog.records if "FlashAttention-2 unavailable" in r.getMessage()]
    assert len(lines) == 1 and lines[0].levelno == logging.WARNING and "not installed" in lines[0].getMessage()


def test_default_and_explicit_implementations_pass_through():
    assert resolve_attn_implementation(None) == "sdpa"
    assert resolve_attn_implementation("eager") == "eager"
