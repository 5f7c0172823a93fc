"""Upstream's multimodal config defaults: stated once, read by every reader of a config."""

from __future__ import annotations

from llava.model.mm_config import MM_DEFAULTS, mm_setting


class _Older:
    """A config saved before the mm_* keys existed."""


class _Set:
    mm_use_im_start_end = True
    image_aspect_ratio = "pad"


def test_a_missing_key_reads_upstreams_default_and_a_set_key_its_value():
    assert mm_setting(_Older(), "mm_projector_type") == "linear"
    assert mm_setting(_Older(), "mm_vision_select_feature") == "patch"
    assert mm_setting(_Older(), "tokenizer_padding_side") == "right"
    assert mm_setting(_Set(), "mm_use_im_start_end") is True
    assert mm_setting(_Set(), "image_aspect_ratio") == "pad"


def test_the_tiny_models_config_holds_a_value_for_every_key_it_writes(tiny_llava):
    written = {key for key in MM_DEFAULTS if key in tiny_llava.config.to_dict()}
    assert {"mm_projector_type", "mm_vision_select_layer", "tokenizer_padding_side"} <= written
    for key in written:
        assert mm_setting(tiny_llava.config, key) == tiny_llava.config.to_dict()[key]
