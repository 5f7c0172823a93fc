"""The checks of the training flags: each returns its problems, each problem with its fix.

``llava.train.arguments.validate`` runs them all and reports every problem at once.
"""

from __future__ import annotations

import json
import os
import re
from enum import Enum
from typing import Any

__all__ = [
    "check_conversation_version",
    "check_data",
    "check_deepspeed",
    "check_liger",
    "check_lora",
    "check_precision",
    "check_quantization",
    "check_trainable_parts",
    "check_vision",
    "cuda_available",
    "deepspeed_config",
    "enum_value",
    "zero_stage",
]


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def enum_value(value: Any) -> Any:
    """``"epoch"`` for ``IntervalStrategy.EPOCH``; anything else as it is."""
    return value.value if isinstance(value, Enum) else value


def deepspeed_config(value: Any) -> tuple[dict | None, str | None]:
    """Load a --deepspeed value (path, JSON text or dict): ``(config, None)`` or ``(None, problem)``."""
    if isinstance(value, dict):
        return value, None
    text = str(value)
    if text.lstrip().startswith("{"):
        where = "the inline --deepspeed JSON"
    else:
        path = os.path.abspath(text)
        if not os.path.isfile(path):
            return None, (
                f"--deepspeed {text}: no such file (looked for {path}); "
                "use one of scripts/zero2.json, scripts/zero3.json, scripts/zero3_offload.json"
            )
        where = path
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        return None, (
            f"--deepspeed: {where} is not valid JSON ({error.msg}; line {error.lineno}, "
            f"column {error.colno}); fix the file or use scripts/zero2.json"
        )
    if not isinstance(config, dict):
        return (
            None,
            f"--deepspeed: {where} holds a JSON {type(config).__name__}, not an object; use scripts/zero2.json",
        )
    return config, None


def zero_stage(config: dict) -> Any:
    zero = config.get("zero_optimization") or {}
    return zero.get("stage", 0) if isinstance(zero, dict) else None


def check_deepspeed(model_args, data_args, training_args) -> list[str]:
    value = training_args.deepspeed
    if not value:
        return []
    config, problem = deepspeed_config(value)
    if problem:
        return [problem]
    stage = zero_stage(config)
    if stage not in (0, 1, 2, 3):
        return [f"--deepspeed: zero_optimization.stage is {stage!r}; use 0, 1, 2 or 3 (scripts/zero2.json has 2)"]
    return []


def check_liger(model_args, data_args, training_args) -> list[str]:
    """transformers' own ``--use_liger_kernel`` replaces ``LlamaForCausalLM.forward``, which LLaVA's forward
    builds on (the images would be dropped)."""
    if getattr(training_args, "use_liger_kernel", False):
        return [
            "--use_liger_kernel (transformers') replaces the Llama forward that LLaVA's builds on: "
            "use --use_liger True (or leave it unset: on wherever Liger-Kernel can run)"
        ]
    return []


def check_quantization(model_args, data_args, training_args) -> list[str]:
    problems = []
    bits = training_args.bits
    if bits not in (4, 8, 16):
        problems.append(f"--bits {bits}: use 16 (no quantization), 8 or 4 (QLoRA)")
    if training_args.quant_type not in ("nf4", "fp4"):
        problems.append(f"--quant_type {training_args.quant_type}: use nf4 (QLoRA's default) or fp4")
    if bits in (4, 8):
        if not training_args.lora_enable and not model_args.tune_mm_mlp_adapter:
            problems.append(
                f"--bits {bits} without --lora_enable True: quantized weights cannot be trained; "
                "add --lora_enable True (QLoRA) or use --bits 16"
            )
        deepspeed = training_args.deepspeed
        if deepspeed:
            config, problem = deepspeed_config(deepspeed)
            if config is not None and zero_stage(config) == 3:
                problems.append(
                    f"--bits {bits} with a ZeRO-3 DeepSpeed config ({deepspeed}): ZeRO-3 cannot partition "
                    "quantized weights; use --deepspeed ./scripts/zero2.json"
                )
    return problems


def check_precision(model_args, data_args, training_args) -> list[str]:
    problems = []
    if training_args.bf16 and training_args.fp16:
        problems.append("--bf16 True and --fp16 True together: pick one (--bf16 True on Ampere or newer GPUs)")
    if training_args.fp16 and training_args.deepspeed and not cuda_available():
        problems.append(
            "--fp16 True under DeepSpeed on a machine without CUDA: DeepSpeed's CPU backend has no fp16; "
            "use --bf16 True or drop --fp16 (fp32)"
        )
    if training_args.tf32 and not cuda_available():
        problems.append("--tf32 True on a machine without CUDA: drop it (TF32 is a CUDA feature)")
    return problems


def check_conversation_version(model_args, data_args, training_args) -> list[str]:
    try:
        from llava.conversation import conv_templates
    except ModuleNotFoundError as error:
        if error.name != "llava.conversation":
            raise
        return []  # the templates module is not in this checkout yet: nothing to check against
    # v0.5 is no template key: upstream's train() special-cases it (module default template).
    if model_args.version not in conv_templates and model_args.version != "v0.5":
        known = ", ".join(sorted([*conv_templates, "v0.5"]))
        return [f"--version {model_args.version}: not a conversation template; use one of {known} (v1 for LLaVA-1.5)"]
    return []


_PROJECTOR_TYPE = re.compile(r"linear|identity|mlp([1-9][0-9]*)x_gelu")


def check_vision(model_args, data_args, training_args) -> list[str]:
    problems = []
    if not _PROJECTOR_TYPE.fullmatch(str(model_args.mm_projector_type)):
        problems.append(
            f"--mm_projector_type {model_args.mm_projector_type}: use linear, mlp{{N}}x_gelu "
            "(mlp2x_gelu for LLaVA-1.5) or identity"
        )
    if model_args.mm_vision_select_feature not in ("patch", "cls_patch"):
        problems.append(f"--mm_vision_select_feature {model_args.mm_vision_select_feature}: use patch or cls_patch")
    merge = str(model_args.mm_patch_merge_type)
    if merge.startswith("spatial"):
        problems.append(
            f"--mm_patch_merge_type {merge}: spatial merging is LLaVA-1.6 (anyres) only, not supported here; use flat"
        )
    elif merge != "flat":
        problems.append(f"--mm_patch_merge_type {merge}: use flat")
    if model_args.pretrain_mm_mlp_adapter is not None:
        if not os.path.isfile(model_args.pretrain_mm_mlp_adapter):
            problems.append(
                f"--pretrain_mm_mlp_adapter {model_args.pretrain_mm_mlp_adapter}: no such file "
                f"(looked for {os.path.abspath(model_args.pretrain_mm_mlp_adapter)}); "
                "give the mm_projector.bin written by stage-1 pretraining"
            )
        if model_args.vision_tower is None:
            problems.append(
                "--pretrain_mm_mlp_adapter without --vision_tower: a text-only model has no projector; "
                "add --vision_tower (openai/clip-vit-large-patch14-336 for LLaVA-1.5)"
            )
    return problems


def check_trainable_parts(model_args, data_args, training_args) -> list[str]:
    """Combinations that leave nothing (or not what was asked for) to train."""
    problems = []
    if model_args.tune_mm_mlp_adapter:
        if model_args.vision_tower is None:
            problems.append(
                "--tune_mm_mlp_adapter without --vision_tower: there is no projector to train; add --vision_tower"
            )
        if training_args.freeze_mm_mlp_adapter:
            problems.append("--tune_mm_mlp_adapter with --freeze_mm_mlp_adapter: nothing would train; drop one of them")
        if training_args.lora_enable:
            # Upstream freezes the whole model (LoRA adapters included) for --tune_mm_mlp_adapter
            # after attaching LoRA, so the adapters would be saved untrained.
            problems.append(
                "--tune_mm_mlp_adapter with --lora_enable True: projector pretraining freezes the LoRA "
                "adapters, which would be saved untrained; drop --lora_enable for stage-1 pretraining, or "
                "drop --tune_mm_mlp_adapter for a LoRA fine-tune (the projector trains alongside LoRA)"
            )
    if training_args.mm_projector_lr is not None:
        if training_args.mm_projector_lr <= 0:
            problems.append(f"--mm_projector_lr {training_args.mm_projector_lr}: use a positive learning rate")
        if model_args.vision_tower is None:
            problems.append(
                "--mm_projector_lr without --vision_tower: a text-only model has no projector; "
                "add --vision_tower or drop --mm_projector_lr"
            )
        elif training_args.freeze_mm_mlp_adapter:
            problems.append(
                "--mm_projector_lr with --freeze_mm_mlp_adapter: a frozen projector is not in the optimizer; "
                "drop one of them"
            )
    return problems


def check_lora(model_args, data_args, training_args) -> list[str]:
    problems = []
    if training_args.lora_r <= 0:
        problems.append(f"--lora_r {training_args.lora_r}: use a positive rank (128 in the LLaVA-1.5 recipe)")
    if training_args.lora_alpha <= 0:
        problems.append(f"--lora_alpha {training_args.lora_alpha}: use a positive value (256 in the recipe)")
    if not 0 <= training_args.lora_dropout < 1:
        problems.append(f"--lora_dropout {training_args.lora_dropout}: use a probability in [0, 1) (0.05)")
    if training_args.lora_bias not in ("none", "all", "lora_only"):
        problems.append(f"--lora_bias {training_args.lora_bias}: use none, all or lora_only")
    return problems


def check_data(model_args, data_args, training_args) -> list[str]:
    problems = []
    if data_args.data_path is None:
        problems.append("--data_path is missing: give the training JSON (a list of LLaVA conversation records)")
    elif not os.path.isfile(data_args.data_path):
        problems.append(
            f"--data_path {data_args.data_path}: no such file (looked for {os.path.abspath(data_args.data_path)})"
        )
    if data_args.image_folder is not None and not os.path.isdir(data_args.image_folder):
        problems.append(
            f"--image_folder {data_args.image_folder}: no such folder "
            f"(looked for {os.path.abspath(data_args.image_folder)})"
        )
    ratio = data_args.image_aspect_ratio
    if ratio == "anyres":
        problems.append(
            "--image_aspect_ratio anyres: that is LLaVA-1.6's tiling, not supported here; use pad (LLaVA-1.5) or square"
        )
    elif ratio not in ("square", "pad"):
        problems.append(f"--image_aspect_ratio {ratio}: use pad (LLaVA-1.5) or square")
    if training_args.model_max_length < 1:
        problems.append(f"--model_max_length {training_args.model_max_length}: use a positive length (2048)")
    return problems
