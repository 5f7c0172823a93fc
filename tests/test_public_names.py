"""Upstream's public names (docs/UPSTREAM.md, function map) resolve, with their values and signatures."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

NAMES = {
    "llava.constants": [
        "IGNORE_INDEX",
        "IMAGE_TOKEN_INDEX",
        "DEFAULT_IMAGE_TOKEN",
        "DEFAULT_IMAGE_PATCH_TOKEN",
        "DEFAULT_IM_START_TOKEN",
        "DEFAULT_IM_END_TOKEN",
        "IMAGE_PLACEHOLDER",
    ],
    "llava.conversation": ["SeparatorStyle", "Conversation", "conv_templates", "default_conversation"],
    "llava.mm_utils": [
        "expand2square",
        "process_images",
        "tokenizer_image_token",
        "get_model_name_from_path",
        "KeywordsStoppingCriteria",
    ],
    "llava.model": ["LlavaLlamaForCausalLM", "LlavaConfig"],
    "llava.model.builder": ["load_pretrained_model"],
    "llava.train.train": [
        "ModelArguments",
        "DataArguments",
        "TrainingArguments",
        "LazySupervisedDataset",
        "DataCollatorForSupervisedDataset",
        "make_supervised_data_module",
        "preprocess",
        "preprocess_multimodal",
        "train",
    ],
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
        "<im_patch>",
        "<im_start>",
        "<im_end>",
    )


def test_separator_styles_and_conversation_fields():
    from llava.conversation import Conversation, SeparatorStyle

    assert {"SINGLE", "TWO", "MPT", "PLAIN", "LLAMA_2"} <= set(SeparatorStyle.__members__)
    fields = set(inspect.signature(Conversation).parameters)
    assert {"system", "roles", "messages", "offset", "sep_style", "sep", "sep2", "version"} <= fields
    for method in ("get_prompt", "append_message", "copy"):
        assert callable(getattr(Conversation, method))


# Upstream's public names that code built on LLaVA calls, with upstream's parameter names
# (in order): (module, name, parameters). Every entry must resolve here.
UPSTREAM_SIGNATURES = [
    ("llava", "LlavaLlamaForCausalLM", None),
    ("llava", "LlavaConfig", None),
    ("llava.model.llava_arch", "LlavaMetaModel.initialize_vision_modules", ["self", "model_args", "fsdp"]),
    ("llava.model.llava_arch", "LlavaMetaForCausalLM.initialize_vision_tokenizer", ["self", "model_args", "tokenizer"]),
    ("llava.train.train", "preprocess", ["sources", "tokenizer", "has_image"]),
    ("llava.train.train", "preprocess_v1", ["sources", "tokenizer", "has_image"]),
    ("llava.train.train", "preprocess_plain", ["sources", "tokenizer"]),
    ("llava.train.train", "preprocess_llama_2", ["sources", "tokenizer", "has_image"]),
    ("llava.train.train", "preprocess_mpt", ["sources", "tokenizer", "has_image"]),
    ("llava.train.train", "preprocess_multimodal", ["sources", "data_args"]),
    ("llava.train.train", "maybe_zero_3", ["param", "ignore_status", "name"]),
    ("llava.train.train", "get_peft_state_maybe_zero_3", ["named_params", "bias"]),
    ("llava.train.train", "get_peft_state_non_lora_maybe_zero_3", ["named_params", "require_grad_only"]),
    ("llava.train.train", "get_mm_adapter_state_maybe_zero_3", ["named_params", "keys_to_match"]),
    ("llava.train.train", "smart_tokenizer_and_embedding_resize", ["special_tokens_dict", "tokenizer", "model"]),
    ("llava.train.train", "rank0_print", ["args"]),
    ("llava.train.train", "find_all_linear_names", ["model"]),
    ("llava.train.train", "safe_save_model_for_hf_trainer", ["trainer", "output_dir"]),
    ("llava.train.train", "make_supervised_data_module", ["tokenizer", "data_args"]),
    ("llava.train.train", "train", ["attn_implementation"]),
    (
        "llava.train.llava_trainer",
        "get_length_grouped_indices",
        ["lengths", "batch_size", "world_size", "generator", "merge"],
    ),
    (
        "llava.train.llava_trainer",
        "get_modality_length_grouped_indices",
        ["lengths", "batch_size", "world_size", "generator"],
    ),
    ("llava.train.llava_trainer", "split_to_even_chunks", ["indices", "lengths", "num_chunks"]),
    ("llava.train.llava_trainer", "maybe_zero_3", ["param", "ignore_status", "name"]),
    ("llava.train.llava_trainer", "get_mm_adapter_state_maybe_zero_3", ["named_params", "keys_to_match"]),
    (
        "llava.model.llava_arch",
        "LlavaMetaForCausalLM.prepare_inputs_labels_for_multimodal",
        ["self", "input_ids", "position_ids", "attention_mask", "past_key_values", "labels", "images", "image_sizes"],
    ),
    ("llava.utils", "disable_torch_init", []),
    ("llava.conversation", "Conversation.get_images", ["self", "return_pil"]),
    (
        "llava.conversation",
        "Conversation.process_image",
        ["self", "image", "image_process_mode", "return_pil", "image_format", "max_len", "min_len"],
    ),
    (
        "llava.model.builder",
        "load_pretrained_model",
        [
            "model_path",
            "model_base",
            "model_name",
            "load_8bit",
            "load_4bit",
            "device_map",
            "device",
            "use_flash_attn",
            "kwargs",
        ],
    ),
    ("llava.eval.run_llava", "eval_model", ["args"]),
    ("llava.eval.model_vqa_loader", "eval_model", ["args"]),
]


@pytest.mark.parametrize(
    "module, name, parameters", UPSTREAM_SIGNATURES, ids=[f"{module}.{name}" for module, name, _ in UPSTREAM_SIGNATURES]
)
def test_upstream_names_keep_upstream_parameters(module, name, parameters):
    target = importlib.import_module(module)
    for part in name.split("."):
        target = getattr(target, part)
    if parameters is not None:
        # Upstream's parameters first, in order; ours may only follow them, each with a default.
        ours = list(inspect.signature(target).parameters.values())
        assert [p.name for p in ours[: len(parameters)]] == parameters
        extra = [p.name for p in ours[len(parameters) :] if p.default is p.empty and p.kind not in (p.VAR_KEYWORD,)]
        assert not extra, f"added parameters without defaults: {extra}"


@pytest.mark.parametrize(
    "function, parameters",
    [
        (
            "llava.model.builder.load_pretrained_model",
            [
                "model_path",
                "model_base",
                "model_name",
                "load_8bit",
                "load_4bit",
                "device_map",
                "device",
                "use_flash_attn",
            ],
        ),
        ("llava.mm_utils.tokenizer_image_token", ["prompt", "tokenizer", "image_token_index", "return_tensors"]),
        ("llava.mm_utils.process_images", ["images", "image_processor", "model_cfg"]),
        ("llava.train.train.make_supervised_data_module", ["tokenizer", "data_args"]),
        ("llava.train.train.preprocess", ["sources", "tokenizer", "has_image"]),
        ("llava.train.train.preprocess_multimodal", ["sources", "data_args"]),
        ("llava.train.train.train", ["attn_implementation"]),
    ],
)
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
    result = subprocess.run([sys.executable, script, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    for flag in ("--lora_enable", "--mm_projector_lr", "--bits", "--group_by_modality_length"):
        assert flag in result.stdout
