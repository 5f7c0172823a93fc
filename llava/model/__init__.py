"""LLaVA model classes (upstream front): ``LlavaLlamaForCausalLM`` and ``LlavaConfig``.

Unlike upstream, import errors are not swallowed: a broken install fails here,
with the real message.
"""

from .language_model.llava_llama import LlavaConfig, LlavaLlamaForCausalLM

__all__ = ["LlavaConfig", "LlavaLlamaForCausalLM"]
