"""Build the projector that maps CLIP features to the language model's width.

Types (config key ``mm_projector_type``): ``linear``; ``mlp{N}x_gelu``
(Linear, then N-1 times GELU + Linear; LLaVA-1.5 uses ``mlp2x_gelu``);
``identity``. Parameter names match upstream checkpoints
(``mm_projector.0.weight`` ... for the MLP, ``mm_projector.weight`` for linear).
"""

from __future__ import annotations

import re

from torch import nn

from ..mm_config import mm_setting

_MLP_PATTERN = re.compile(r"^mlp(\d+)x_gelu$")


def is_valid_projector_type(projector_type: str) -> bool:
    """True for the projector types this module can build."""
    return projector_type in ("linear", "identity") or bool(_MLP_PATTERN.match(projector_type))


class IdentityMap(nn.Module):
    """Pass-through projector (vision width must equal the language width)."""

    def forward(self, features, *args, **kwargs):
        return features

    @property
    def config(self) -> dict:
        return {"mm_projector_type": "identity"}


def build_projector(projector_type: str, vision_hidden_size: int, text_hidden_size: int) -> nn.Module:
    """The projector for ``projector_type``; flat arguments, no config object."""
    if projector_type == "linear":
        return nn.Linear(vision_hidden_size, text_hidden_size)
    if projector_type == "identity":
        return IdentityMap()
    match = _MLP_PATTERN.match(projector_type)
    if match:
        depth = int(match.group(1))
        layers: list[nn.Module] = [nn.Linear(vision_hidden_size, text_hidden_size)]
        for _ in range(depth - 1):
            layers += [nn.GELU(), nn.Linear(text_hidden_size, text_hidden_size)]
        return nn.Sequential(*layers)
    raise ValueError(
        f"Unknown mm_projector_type {projector_type!r}: use linear, identity or mlp<N>x_gelu (e.g. mlp2x_gelu)."
    )


def build_vision_projector(config, delay_load: bool = False, **kwargs) -> nn.Module:
    """Upstream's front: the projector described by a LLaVA config."""
    return build_projector(mm_setting(config, "mm_projector_type"), config.mm_hidden_size, config.hidden_size)
