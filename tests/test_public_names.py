"""Upstream's public names (UPSTREAM_FACTS section 1) resolve, with their values and signatures."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

NAMES = {
    "llava.constants": ["IGNORE_INDEX", "IMAGE_TOKEN_INDEX", "DEFAULT_IMAGE_TOKEN", "DEFAULT_IMAGE_PATCH_TOKEN",
                        "DEFAULT_IM_START_TOKEN", "DEFAULT_IM_END_TOKEN", "IMAGE_PLACEHOLDER"],
    "llava.conversation": ["SeparatorStyle", "Conversation", "conv_templates", "default_conversation"],
    "llava.mm_utils": ["expand2square", "process_images", "tokenizer_image_token", "get_model_name_from_path",
                       "KeywordsStoppingCriteria"],
    "llava.model": ["LlavaLlamaForCausalLM", "LlavaConfig"],
    "llava.model.builder": ["load_pretrained_model"],
    "llava.train.train": ["ModelArguments", "DataArguments", "TrainingArguments", "LazySupervisedDataset",
                          "DataCollatorForSupervisedDataset", "make_supervised_data_module", "preprocess",
                          "preprocess_multimodal", "train"],
    "llava.train.llava_trainer": ["LLaVATrainer", "LengthGroupedSampler"],
    "llava.eval.model_vqa": ["eval_model"],
}


@pytest.mark.parametrize("module", sorted(NAMES))
def test_names_resolve(module):
    imported = importlib.import_module(module)
    missing = [name for name in NAMES[module] if not hasattr(imported, name)]
    assert not missing, f"{module} lacks {missing}"


def test_constant_values():
    from llava import constants

    assert (constants.IGNORE_INDEX, constants.IMAGE_TOKEN_INDEX) == (-100, -200)
    assert constants.DEFAULT_IMAGE_TOKEN == "<image>" and constants.IMAGE_PLACEHOLDER == "<image-placeholder>"
    assert (constants.DEFAULT_IMAGE_PATCH_TOKEN, constants.DEFAULT_IM_START_TOKEN, constants.DEFAULT_IM_END_TOKEN) == (
        "<im_patch>", "<im_start>", "<im_end>")


def test_separator_styles_and_conversation_fields():
    from llava.conversation import Conversation, SeparatorStyle

    assert {"SINGLE", "TWO", "MPT", "PLAIN", "LLAMA_2"} <= set(SeparatorStyle.__members__)
    fields = set(inspect.signature(Conversation).parameters)
    assert {"system", "roles", "messages", "offset", "sep_style", "sep", "sep2", "version"} <= fields
    for method in ("get_prompt", "append_message", "copy"):
        assert callable(getattr(Conversation, method))


@pytest.mark.parametrize("function, parameters", [
    ("llava.model.builder.load_pretrained_model",
     ["model_path", "model_base", "model_name", "load_8bit", "load_4bit", "device_map", "device", "use_flash_attn"]),
    ("llava.mm_utils.tokenizer_image_token", ["prompt", "tokenizer", "image_token_index", "return_tensors"]),
    ("llava.mm_utils.process_images", ["images", "image_processor", "model_cfg"]),
    ("llava.train.train.make_supervised_data_module", ["tokenizer", "data_args"]),
    ("llava.train.train.preprocess", ["sources", "tokenizer", "has_image"]),
    ("llava.train.train.preprocess_multimodal", ["sources", "data_args"]),
    ("llava.train.train.train", ["attn_implementation"]),
])
def test_signatures_keep_upstream_parameters_first(function, parameters):
    module, name = function.rsplit(".", 1)
    signature = inspect.signature(getattr(importlib.import_module(module), name))
    assert list(signature.parameters)[: len(parameters)] == parameters


def test_model_classes_are_registered():
    from transformers import AutoConfig

    from llava.model import LlavaConfig

    assert LlavaConfig.model_type == "llava_llama"
    assert AutoConfig.for_model("llava_llama").__class__ is LlavaConfig


@pytest.mark.parametrize("script", ["llava/train/train.py", "llava/train/train_mem.py"])
def test_entry_points_run_as_scripts_and_document_upstream_flags(script):
    result = subprocess.run([sys.executable, script, "--help"], cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    for flag in ("--lora_enable", "--mm_projector_lr", "--bits", "--group_by_modality_length"):
        assert flag in result.stdout
