"""How many sequence positions one image takes: read from the vision tower's config, no weights loaded."""

from __future__ import annotations


def num_image_tokens(vision_tower: str | None, select_feature: str = "patch") -> int:
    """Positions one image takes for ``vision_tower`` (a Hub id or folder; None: text-only, 0).

    ``(image_size // patch_size) ** 2`` patches, plus the CLS position when
    ``select_feature`` is ``cls_patch`` (576 for CLIP ViT-L/14-336 with ``patch``).
    """
    if vision_tower is None:
        return 0
    from transformers import CLIPVisionConfig

    config = CLIPVisionConfig.from_pretrained(vision_tower)
    patches = (config.image_size // config.patch_size) ** 2
    return patches + (1 if select_feature == "cls_patch" else 0)
