"""Upstream's call signatures on the model: ``initialize_vision_modules(model_args, fsdp)`` and
``initialize_vision_tokenizer(model_args, tokenizer)``, as upstream's train.py calls them."""

from __future__ import annotations

import subprocess
import sys

import torch

from llava.constants import DEFAULT_IM_END_TOKEN, DEFAULT_IM_START_TOKEN
from llava.train.arguments import ModelArguments


def test_from_llava_import_model_class_is_upstreams_import():
    from llava import LlavaConfig, LlavaLlamaForCausalLM
    from llava.model import LlavaConfig as config_class
    from llava.model import LlavaLlamaForCausalLM as model_class

    assert (LlavaLlamaForCausalLM, LlavaConfig) == (model_class, config_class)


def test_importing_llava_alone_stays_cheap():
    code = "import sys, llava; print('torch' in sys.modules)"
    assert (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
        == "False"
    )


def test_initialize_vision_modules_with_upstreams_model_args(tiny_llava, tiny_llava_dir):
    args = ModelArguments(
        vision_tower=str(tiny_llava_dir / "clip-vision-tower"),
        mm_vision_select_layer=-1,
        mm_projector_type="linear",
        mm_vision_select_feature="cls_patch",
    )
    tiny_llava.get_model().initialize_vision_modules(model_args=args, fsdp=None)
    config = tiny_llava.config
    assert (config.mm_projector_type, config.mm_vision_select_layer, config.mm_vision_select_feature) == (
        "linear",
        -1,
        "cls_patch",
    )
    assert isinstance(tiny_llava.get_model().mm_projector, torch.nn.Linear)
    tower = tiny_llava.get_vision_tower()
    assert tower.is_loaded and tower.select_layer == -1


def test_initialize_vision_tokenizer_with_upstreams_model_args(tiny_llava, tiny_tokenizer):
    rows = tiny_llava.get_input_embeddings().weight.shape[0]
    args = ModelArguments(mm_use_im_start_end=True, mm_use_im_patch_token=False, tune_mm_mlp_adapter=True)
    tiny_llava.initialize_vision_tokenizer(args, tokenizer=tiny_tokenizer)
    assert tiny_tokenizer.convert_tokens_to_ids(DEFAULT_IM_START_TOKEN) >= rows - 2
    assert DEFAULT_IM_END_TOKEN in tiny_tokenizer.get_vocab()
    assert tiny_llava.get_input_embeddings().weight.shape[0] == len(tiny_tokenizer)
    # Stage-1 with start/end tokens: input embeddings train, output embeddings do not (upstream).
    assert tiny_llava.get_input_embeddings().weight.requires_grad
    assert not tiny_llava.get_output_embeddings().weight.requires_grad
