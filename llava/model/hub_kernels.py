"""The one seam for transformers' Hub kernels: off unless the user asks for them.

transformers 5 (with the ``kernels`` package it pulls in) defaults
``use_kernels`` to True inside ``from_pretrained`` and fetches kernels such as
``kernels-community/rotary`` from the Hub. On a node without network that is an
error; with network it downloads and runs third-party code nobody asked for, and
the numbers no longer match upstream's. Every model load in the project takes
its keyword arguments from :func:`kernel_kwargs`, so the default is always said
out loud: ``use_kernels=False``, or True where ``--use_kernels`` (training) /
``--use-kernels`` (answering) asks for it.
"""

from __future__ import annotations

KEY = "use_kernels"


def kernel_kwargs(use_kernels: bool = False) -> dict:
    """``from_pretrained`` keyword arguments that never leave transformers' Hub-kernel default in charge."""
    return {KEY: bool(use_kernels)}


def with_kernel_choice(load_kwargs: dict, use_kernels: bool = False) -> dict:
    """``load_kwargs`` with ``use_kernels`` set: the caller's own value wins, else ``use_kernels``."""
    out = dict(load_kwargs)
    out.setdefault(KEY, bool(use_kernels))
    return out
