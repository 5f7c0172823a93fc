"""The frozen CLIP vision tower that turns pixel values into patch features.

The tower is built lazily, as upstream does: a LLaVA checkpoint names the tower
(``mm_vision_tower``, a hub id or a local folder) and the tower's own weights
are loaded from there, never from the LLaVA checkpoint. ``load_model()`` does
the loading; until then the module holds no parameters, so it survives
``from_pretrained``'s meta-device initialisation untouched.
"""

from __future__ import annotations

import torch
from torch import nn


def image_processor_class():
    """``CLIPImageProcessor``, or its PIL twin when torchvision is absent.

    transformers 5 picks the PIL backend itself without torchvision but warns on
    every load; asking for it directly keeps the logs clean.
    """
    import importlib.util

    import transformers

    if importlib.util.find_spec("torchvision") is None and hasattr(transformers, "CLIPImageProcessorPil"):
        return transformers.CLIPImageProcessorPil
    return transformers.CLIPImageProcessor


class CLIPVisionTower(nn.Module):
    """Frozen ``CLIPVisionModel`` plus its image processor.

    Features are ``hidden_states[select_layer]``; ``select_feature="patch"``
    drops the CLS position, ``"cls_patch"`` keeps it.
    """

    def __init__(
        self,
        vision_tower: str,
        select_layer: int = -2,
        select_feature: str = "patch",
        delay_load: bool = False,
        cache_dir: str | None = None,
    ):
        super().__init__()
        if select_feature not in ("patch", "cls_patch"):
            raise ValueError(f"mm_vision_select_feature must be 'patch' or 'cls_patch', got {select_feature!r}")
        self.vision_tower_name = vision_tower
        self.select_layer = select_layer
        self.select_feature = select_feature
        self.cache_dir = cache_dir
        self.is_loaded = False
        self.image_processor = None
        # Read only the small config now; the weights come with load_model().
        from transformers import CLIPVisionConfig

        self.cfg_only = CLIPVisionConfig.from_pretrained(vision_tower, cache_dir=cache_dir)
        if not delay_load:
            self.load_model()

    def load_model(self, device_map=None, dtype: torch.dtype | None = None) -> None:
        """Load the processor and the frozen CLIP weights (idempotent)."""
        if self.is_loaded:
            return
        from transformers import CLIPVisionModel

        self.image_processor = image_processor_class().from_pretrained(self.vision_tower_name, cache_dir=self.cache_dir)
        from llava.model.hub_kernels import kernel_kwargs

        # The frozen tower never takes Hub kernels: its numbers must match upstream's.
        kwargs = {"cache_dir": self.cache_dir, **kernel_kwargs(False)}
        if device_map is not None:
            kwargs["device_map"] = device_map
        if dtype is not None:
            kwargs["dtype"] = dtype
        self.vision_tower = CLIPVisionModel.from_pretrained(self.vision_tower_name, **kwargs)
        self.vision_tower.requires_grad_(False)
        self.is_loaded = True

    def feature_select(self, outputs) -> torch.Tensor:
        features = outputs.hidden_states[self.select_layer]
        return features[:, 1:] if self.select_feature == "patch" else features

    @torch.no_grad()
    def forward(self, images: torch.Tensor | list[torch.Tensor]) -> torch.Tensor | list[torch.Tensor]:
        if isinstance(images, list):
            return [self.forward(image.unsqueeze(0)).squeeze(0) for image in images]
        outputs = self.vision_tower(images.to(device=self.device, dtype=self.dtype), output_hidden_states=True)
        return self.feature_select(outputs).to(images.dtype)

    @property
    def dummy_feature(self) -> torch.Tensor:
        return torch.zeros(1, self.hidden_size, device=self.device, dtype=self.dtype)

    @property
    def dtype(self) -> torch.dtype:
        return self.vision_tower.dtype

    @property
    def device(self) -> torch.device:
        return self.vision_tower.device

    @property
    def config(self):
        return self.vision_tower.config if self.is_loaded else self.cfg_only

    @property
    def hidden_size(self) -> int:
        return self.config.hidden_size

    @property
    def num_patches_per_side(self) -> int:
        return self.config.image_size // self.config.patch_size

    @property
    def num_patches(self) -> int:
        return self.num_patches_per_side**2

    @property
    def num_image_tokens(self) -> int:
        """Positions one image occupies in the language model's sequence."""
        return self.num_patches + (1 if self.select_feature == "cls_patch" else 0)
