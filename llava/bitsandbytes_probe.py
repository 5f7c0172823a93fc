"""Importing bitsandbytes never reaches for the Hub: its CPU kernel probe is skipped, and silent.

bitsandbytes >= 0.48 on a CPU with AVX512-BF16 runs ``kernels.get_kernel(
"kernels-community/quantization-bitsandbytes")`` the moment it is imported (peft imports it,
so every command does). That asks the Hub whether to trust the publisher, then downloads and
runs the kernel; offline it fails and logs a warning on every run. It is the Hub-kernel
default of transformers 5 (see :mod:`llava.model.hub_kernels`) by another door, and this
project loads no Hub kernel nobody asked for.

:func:`install` (run by ``import llava``) puts a finder on ``sys.meta_path`` for that one
module: while it executes, ``kernels`` is not importable (bitsandbytes then uses its own
compiled CPU kernel, as it does whenever the probe fails) and the probe's warning is dropped.
Nothing else is touched; ``kernels`` stays importable for everything else.
``LLAVA_BNB_HUB_KERNEL=1`` leaves bitsandbytes alone.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import logging
import os
import sys

MODULE = "bitsandbytes.backends.cpu.ops"
OPT_IN = "LLAVA_BNB_HUB_KERNEL"
PROBE_NOTE = "Failed to load CPU gemm_4bit_forward from kernels-community"
_ABSENT = object()


class _DropProbeNote(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(PROBE_NOTE)


class _NoProbeLoader(importlib.abc.Loader):
    """bitsandbytes' own loader, run with ``kernels`` hidden and the probe's note dropped."""

    def __init__(self, loader: importlib.abc.Loader):
        self.loader = loader

    def __getattr__(self, name: str):  # get_source, get_code, ... for tracebacks and inspect
        return getattr(self.loader, name)

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        saved = sys.modules.get("kernels", _ABSENT)
        sys.modules["kernels"] = None  # `from kernels import get_kernel` -> ImportError
        logger, note = logging.getLogger(MODULE), _DropProbeNote()
        logger.addFilter(note)
        try:
            self.loader.exec_module(module)
        finally:
            logger.removeFilter(note)
            if saved is _ABSENT:
                sys.modules.pop("kernels", None)
            else:
                sys.modules["kernels"] = saved


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != MODULE:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path, target)
        if spec is not None and spec.loader is not None:
            spec.loader = _NoProbeLoader(spec.loader)
        return spec


def install() -> bool:
    """Put the finder in place (once); False when too late (already imported) or opted out."""
    if os.environ.get(OPT_IN, "").lower() in ("1", "true", "yes") or MODULE in sys.modules:
        return False
    if not any(isinstance(finder, _Finder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
    return True
