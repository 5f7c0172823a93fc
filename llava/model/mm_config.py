"""Upstream's multimodal config keys and their defaults, stated once.

A LLaVA ``config.json`` carries ``mm_*`` keys that older releases (and
upstream's training arguments, which the tower and projector builders also
accept) may lack; every reader asks :func:`mm_setting`, so each default lives
here and nowhere else (docs/UPSTREAM.md lists the keys).
"""

from __future__ import annotations

from typing import Any

# Key -> the value upstream's code assumes when a config does not have it.
MM_DEFAULTS: dict[str, Any] = {
    "mm_vision_tower": None,
    "mm_projector_type": "linear",
    "mm_vision_select_layer": -2,
    "mm_vision_select_feature": "patch",
    "mm_use_im_start_end": False,
    "mm_use_im_patch_token": True,
    "image_aspect_ratio": None,
    "tokenizer_padding_side": "right",
    "tokenizer_model_max_length": None,
    "max_sequence_length": 2048,
}


def mm_setting(config: Any, name: str) -> Any:
    """``config.<name>``, or upstream's default for it when the config does not set it.

    >>> class Saved:
    ...     mm_projector_type = "mlp2x_gelu"
    >>> mm_setting(Saved(), "mm_projector_type"), mm_setting(Saved(), "mm_vision_select_layer")
    ('mlp2x_gelu', -2)
    """
    return getattr(config, name, MM_DEFAULTS[name])
