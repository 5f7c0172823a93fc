"""llava-okvqa: LLaVA-1.5 fine-tuning on today's libraries.

Importing the package is cheap: the model classes live in ``llava.model`` and
are imported on demand, so ``python -m llava.data.okvqa`` never pays for torch.
``from llava import LlavaLlamaForCausalLM`` (upstream's import) still works: the
name is resolved from ``llava.model`` on first use.

Importing it also keeps bitsandbytes from fetching a kernel from the Hub when some later
import loads it (:mod:`llava.bitsandbytes_probe`).
"""

from llava import bitsandbytes_probe as _bitsandbytes_probe

__version__ = "0.1.0"

_bitsandbytes_probe.install()

_MODEL_NAMES = ("LlavaLlamaForCausalLM", "LlavaConfig")


def __getattr__(name: str):
    if name in _MODEL_NAMES:
        from llava import model

        return getattr(model, name)
    raise AttributeError(f"module 'llava' has no attribute {name!r}")
