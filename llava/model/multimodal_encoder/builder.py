"""Build the vision tower named by a LLaVA config (upstream's ``build_vision_tower``)."""

from __future__ import annotations

from ..mm_config import mm_setting
from .clip_encoder import CLIPVisionTower


def build_vision_tower(vision_tower_cfg, delay_load: bool = False, **kwargs) -> CLIPVisionTower:
    """The CLIP tower for a config or argument object with ``mm_vision_tower``/``vision_tower``.

    Any hub id or local folder holding a CLIP vision model is accepted; upstream
    only accepted names containing ``openai``/``laion``/``ShareGPT4V`` or
    existing paths, which rejected valid local copies under other names.
    """
    name = mm_setting(vision_tower_cfg, "mm_vision_tower") or getattr(vision_tower_cfg, "vision_tower", None)
    if not name:
        raise ValueError("No vision tower configured: set --vision_tower (e.g. openai/clip-vit-large-patch14-336).")
    return CLIPVisionTower(
        name,
        select_layer=mm_setting(vision_tower_cfg, "mm_vision_select_layer"),
        select_feature=mm_setting(vision_tower_cfg, "mm_vision_select_feature"),
        delay_load=delay_load,
        cache_dir=kwargs.get("cache_dir"),
    )
