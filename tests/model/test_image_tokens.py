"""llava/model/image_tokens.py: positions one image takes, from the tower's config alone."""

from __future__ import annotations

from transformers import CLIPVisionConfig

from llava.model.image_tokens import num_image_tokens


def test_positions_per_image_come_from_the_tower_config(tmp_path):
    CLIPVisionConfig(
        image_size=48, patch_size=8, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2
    ).save_pretrained(tmp_path)
    assert num_image_tokens(str(tmp_path), "patch") == 36  # (48 / 8) ** 2
    assert num_image_tokens(str(tmp_path), "cls_patch") == 37  # the CLS position kept
    assert num_image_tokens(None) == 0  # text-only
