"""Training command line: upstream LLaVA's flags as typed dataclasses, parsed and checked up front.

Turns a command line into ``(ModelArguments, DataArguments, TrainingArguments)``
or refuses it with every problem at once (``ArgumentError``), before anything heavy
loads. The transformers-4.37 flags upstream's scripts still pass are fields
(``LegacyTrainingFlags``, listed by ``--help``) that warn and map onto their
transformers-5 form; without CUDA ``--tf32 True`` is dropped and ``--use_cpu`` set.
docs/TRAINING.md is the manual.

    model_args, data_args, training_args = parse_args()        # sys.argv[1:]
"""

import argparse
import dataclasses
import json
import logging
import os
import re
import sys
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import transformers
from transformers.hf_argparser import string_to_bool

from llava.train.input_checks import check_run_inputs

__all__ = [
    "LEGACY_FLAGS",
    "ArgumentError",
    "DataArguments",
    "LegacyFlag",
    "ModelArguments",
    "TrainingArguments",
    "LegacyTrainingFlags",
    "apply_legacy_flags",
    "fit_to_machine",
    "parse_args",
    "validate",
]

logger = logging.getLogger("llava")


# --------------------------------------------------------------------------------------------
# The three argument dataclasses (upstream's names, types and defaults).
# --------------------------------------------------------------------------------------------


@dataclass
class ModelArguments:
    """Which language model, vision tower and projector to build, and how they connect."""

    model_name_or_path: str | None = field(
        default="facebook/opt-125m",
        metadata={
            "help": "Hub id or local folder of the language model (or LLaVA checkpoint) to start from."
        },
    )
    version: str | None = field(
        default="v0",
        metadata={
            "help": "Conversation template key in llava.conversation.conv_templates (v1 for LLaVA-1.5)."
        },
    )
    freeze_backbone: bool = field(
        default=False,
        metadata={
            "help": "Freeze the language model's weights (model.model) before anything else is attached."
        },
    )
    tune_mm_mlp_adapter: bool = field(
        default=False,
        metadata={
            "help": "Stage-1 pretraining: train only the projector and save only mm_projector.bin."
        },
    )
    vision_tower: str | None = field(
        default=None,
        metadata={
            "help": "Hub id or folder of the CLIP vision tower; without it the model is text-only."
        },
    )
    mm_vision_select_layer: int | None = field(
        default=-1,
        metadata={
            "help": "Index into the tower's hidden_states used as image features (-2 for LLaVA-1.5)."
        },
    )
    pretrain_mm_mlp_adapter: str | None = field(
        default=None,
        metadata={
            "help": "Path to an mm_projector.bin from stage-1 pretraining to initialise the projector."
        },
    )
    mm_projector_type: str | None = field(
        default="linear",
        metadata={
            "help": "Projector architecture: linear, mlp{N}x_gelu (mlp2x_gelu for LLaVA-1.5) or identity."
        },
    )
    mm_use_im_start_end: bool = field(
        default=False,
        metadata={
            "help": "Wrap each image in <im_start> ... <im_end> tokens (adds them to the vocabulary)."
        },
    )
    mm_use_im_patch_token: bool = field(
        default=True,
        metadata={"help": "Add the <im_patch> token to the vocabulary (False for LLaVA-1.5)."},
    )
    mm_patch_merge_type: str | None = field(
        default="flat",
        metadata={
            "help": "How image patch features are merged; only 'flat' (LLaVA-1.5) is supported."
        },
    )
    mm_vision_select_feature: str | None = field(
        default="patch",
        metadata={
            "help": "'patch' drops the CLS position from the image features, 'cls_patch' keeps it."
        },
    )


@dataclass
class DataArguments:
    """Where the training conversations and images are, and how images are prepared.

    ``image_processor`` and ``mm_use_im_start_end`` are not flags: ``train()`` fills them
    in at run time (from the vision tower and from ``ModelArguments``), as upstream does.
    """

    data_path: str | None = field(
        default=None,
        metadata={"help": "Path to the training data: a JSON list of LLaVA conversation records."},
    )
    lazy_preprocess: bool = field(
        default=False,
        metadata={
            "help": "Accepted for upstream compatibility: samples are always tokenized lazily."
        },
    )
    is_multimodal: bool = field(
        default=False,
        metadata={
            "help": "Treat the data as image+text; train() turns it on when --vision_tower is given."
        },
    )
    image_folder: str | None = field(
        default=None,
        metadata={"help": "Folder that the records' relative 'image' paths are resolved against."},
    )
    image_aspect_ratio: str = field(
        default="square",
        metadata={
            "help": "'square': resize as CLIP does; 'pad': pad to a square with the mean colour first."
        },
    )
    # Not upstream: used by the pre-flight data check (llava/train/preflight.py).
    skip_flagged_samples: bool = field(
        default=False,
        metadata={
            "help": "Not upstream. Train on the records the pre-flight data check accepts and log how "
            "many were skipped, instead of stopping with the list of flagged records."
        },
    )
    # Filled by train() at run time, never from the command line (init=False keeps them off it).
    image_processor: Any = field(
        default=None,
        init=False,
        repr=False,
        metadata={"help": "The vision tower's image processor; set by train()."},
    )
    mm_use_im_start_end: bool = field(
        default=False,
        init=False,
        metadata={"help": "Copy of ModelArguments.mm_use_im_start_end; set by train()."},
    )


# --------------------------------------------------------------------------------------------
# Legacy transformers-4.37 flags: fields that warn and map (TRL's sft_config.py does the same).
# --------------------------------------------------------------------------------------------


def _identity(value: str) -> Any:
    return value


def _boolean(value: str | bool) -> bool:
    return string_to_bool(value)


def _warmup_ratio(value: str) -> float:
    ratio = float(value)
    if not 0 <= ratio < 1:
        raise ValueError(
            f"--warmup_ratio {value} is not a ratio in [0, 1); give a step count as --warmup_steps N instead"
        )
    return ratio


def _group_by_length(value: str) -> str | None:
    return "group_by_length" if string_to_bool(value) else None


def _inputs_for_metrics(value: str) -> list[str] | None:
    return ["inputs"] if string_to_bool(value) else None


def _dropped(value: str) -> None:
    return None


@dataclass(frozen=True)
class LegacyFlag:
    """One transformers-4.37 flag and what it becomes under transformers 5.

    ``new_value`` turns the old value (text) into the value of ``new``; ``None`` (or no
    ``new`` field at all) drops the flag. A ValueError from it is reported as a problem.
    """

    old: str
    new: str | None
    note: str
    is_bool: bool = False
    new_value: Callable[[Any], Any] = _identity


LEGACY_FLAGS: tuple[LegacyFlag, ...] = (
    LegacyFlag(
        "evaluation_strategy", "eval_strategy", "renamed to --eval_strategy in transformers 5"
    ),
    LegacyFlag(
        "warmup_ratio",
        "warmup_steps",
        "removed in transformers 5; a float below 1 in --warmup_steps is the same ratio of the total steps",
        new_value=_warmup_ratio,
    ),
    LegacyFlag(
        "group_by_length",
        "train_sampling_strategy",
        "removed in transformers 5; True becomes --train_sampling_strategy group_by_length, False the default",
        is_bool=True,
        new_value=_group_by_length,
    ),
    LegacyFlag(
        "overwrite_output_dir",
        None,
        "removed in transformers 5 and ignored: a run resumes from the newest checkpoint-* in --output_dir "
        "(as upstream); point --output_dir at a new folder to start over",
        is_bool=True,
        new_value=_dropped,
    ),
    LegacyFlag(
        "logging_dir",
        None,
        "removed in transformers 5 and ignored: TensorBoard logs go to $TENSORBOARD_LOGGING_DIR, "
        "else to <output_dir>/runs/; set that variable to keep this folder",
        new_value=_dropped,
    ),
    LegacyFlag(
        "no_cuda",
        "use_cpu",
        "renamed to --use_cpu in transformers 5",
        is_bool=True,
        new_value=_boolean,
    ),
    LegacyFlag(
        "save_safetensors",
        None,
        "removed in transformers 5 and ignored: checkpoints are always saved as safetensors",
        is_bool=True,
        new_value=_dropped,
    ),
    LegacyFlag(
        "per_gpu_train_batch_size",
        "per_device_train_batch_size",
        "removed in transformers 5; same meaning as --per_device_train_batch_size",
        new_value=int,
    ),
    LegacyFlag(
        "per_gpu_eval_batch_size",
        "per_device_eval_batch_size",
        "removed in transformers 5; same meaning as --per_device_eval_batch_size",
        new_value=int,
    ),
    LegacyFlag(
        "include_inputs_for_metrics",
        "include_for_metrics",
        "removed in transformers 5; True becomes --include_for_metrics inputs",
        is_bool=True,
        new_value=_inputs_for_metrics,
    ),
    LegacyFlag(
        "gradient_checkpointing",
        "activation_checkpointing",
        "deprecated alias in transformers 5 (removed in 6); passing it on as --activation_checkpointing",
        is_bool=True,
        new_value=_boolean,
    ),
)


# Bare "--flag" (no value): "True" for a boolean legacy flag, this marker ("needs a value") otherwise.
_NO_VALUE = ""


def _legacy_field(flag: LegacyFlag):
    return field(
        default=None,
        metadata={
            "help": f"Deprecated (transformers 4.37): {flag.note}.",
            "nargs": "?",
            "const": "True" if flag.is_bool else _NO_VALUE,
        },
    )


_BY_NAME = {flag.old: flag for flag in LEGACY_FLAGS}


@dataclass
class LegacyTrainingFlags:
    """The transformers-4.37 flags upstream's scripts still pass; ``TrainingArguments`` maps them.

    ``--gradient_checkpointing`` is still a transformers field (a deprecated alias) and is
    mapped the same way.
    """

    evaluation_strategy: str | None = _legacy_field(_BY_NAME["evaluation_strategy"])
    warmup_ratio: str | None = _legacy_field(_BY_NAME["warmup_ratio"])
    group_by_length: str | None = _legacy_field(_BY_NAME["group_by_length"])
    overwrite_output_dir: str | None = _legacy_field(_BY_NAME["overwrite_output_dir"])
    logging_dir: str | None = _legacy_field(_BY_NAME["logging_dir"])
    no_cuda: str | None = _legacy_field(_BY_NAME["no_cuda"])
    save_safetensors: str | None = _legacy_field(_BY_NAME["save_safetensors"])
    per_gpu_train_batch_size: str | None = _legacy_field(_BY_NAME["per_gpu_train_batch_size"])
    per_gpu_eval_batch_size: str | None = _legacy_field(_BY_NAME["per_gpu_eval_batch_size"])
    include_inputs_for_metrics: str | None = _legacy_field(_BY_NAME["include_inputs_for_metrics"])


def apply_legacy_flags(
    values: dict[str, Any],
    given: set[str] | frozenset[str] = frozenset(),
    flags: Sequence[LegacyFlag] = LEGACY_FLAGS,
) -> list[str]:
    """Map the legacy flags in ``values`` (field name -> value) onto their transformers-5 fields.

    Each legacy value found is cleared and its new field set, with one deprecation note
    on the ``llava`` logger; ``given``: the flags named on the command line (a legacy flag
    together with its new one is a problem). Returns the problems (values that cannot be
    mapped), each with its fix; the mapping itself is idempotent.
    """
    problems: list[str] = []
    for legacy in flags:
        value = values.get(legacy.old)
        if value is None:
            continue
        values[legacy.old] = None
        if legacy.new is not None and legacy.new in given:
            problems.append(f"--{legacy.old} and --{legacy.new} are both given: pass only --{legacy.new}")
            continue
        if value == _NO_VALUE:
            problems.append(f"--{legacy.old} needs a value ({legacy.note})")
            continue
        try:
            new_value = legacy.new_value(value)
        except (ValueError, argparse.ArgumentTypeError) as error:
            problems.append(f"--{legacy.old} {value}: {error}")
            continue
        if legacy.new is None or new_value is None:
            logger.warning("deprecated flag --%s %s dropped: %s", legacy.old, value, legacy.note)
            continue
        logger.warning("deprecated flag --%s %s: %s", legacy.old, value, legacy.note)
        values[legacy.new] = new_value
    return problems


_TF32_NOTE = (
    "--tf32 True ignored: TF32 is a CUDA (Ampere or newer) feature and this machine has no CUDA"
)
_USE_CPU_NOTE = (
    "no CUDA device: setting --use_cpu True (DeepSpeed runs its processes on the CPU over gloo)"
)


def fit_to_machine(values: dict[str, Any], given: set[str] | frozenset[str], *, cuda_available: bool) -> None:
    """Without CUDA: ``--tf32 True`` is dropped with a warning and ``--use_cpu True`` set (unless
    ``--use_cpu`` or ``--no_cuda`` is given) with an info line. With CUDA nothing changes."""
    if cuda_available:
        return
    if values.get("tf32"):
        logger.warning(_TF32_NOTE)
        values["tf32"] = None
    if "use_cpu" not in given and "no_cuda" not in given:
        logger.info(_USE_CPU_NOTE)
        values["use_cpu"] = True


# A hook for patches: field groups TrainingArguments also carries (their flags parse with it).
TRAINING_FIELD_GROUPS: tuple[type, ...] = ()
# [patch 0001-eval-between-epochs]
from llava.train.eval_arguments import EvalArguments, validate_evaluation_args  # noqa: E402

TRAINING_FIELD_GROUPS = (*TRAINING_FIELD_GROUPS, EvalArguments)
# [/patch 0001-eval-between-epochs]


@dataclass
class TrainingArguments(transformers.TrainingArguments, LegacyTrainingFlags, *TRAINING_FIELD_GROUPS):
    """transformers' TrainingArguments plus upstream LLaVA's training, quantization and LoRA flags."""

    def __post_init__(self):
        # Deviation from upstream: transformers 5 dropped these flags; they warn and map here.
        values = {name: getattr(self, name) for name in _OWN_LEGACY_AND_TARGET_FIELDS}
        problems = apply_legacy_flags(values, flags=_OWN_LEGACY_FLAGS)
        if problems:
            raise ValueError("; ".join(problems))
        for name, value in values.items():
            setattr(self, name, value)
        super().__post_init__()

    cache_dir: str | None = field(
        default=None,
        metadata={"help": "Folder for downloaded hub files (passed to from_pretrained)."},
    )
    optim: str = field(
        default="adamw_torch",
        metadata={
            "help": "Optimizer name (transformers OptimizerNames); upstream uses adamw_torch."
        },
    )
    remove_unused_columns: bool = field(
        default=False,
        metadata={
            "help": "Keep every collated key (images included) when batches reach the model."
        },
    )
    freeze_mm_mlp_adapter: bool = field(
        default=False,
        metadata={"help": "Keep the projector frozen."},
    )
    mpt_attn_impl: str | None = field(
        default="triton",
        metadata={
            "help": "Accepted for upstream compatibility; unused (MPT models are not supported)."
        },
    )
    model_max_length: int = field(
        default=512,
        metadata={
            "help": "Maximum sequence length in tokens. Sequences are right padded (and possibly truncated)."
        },
    )
    double_quant: bool = field(
        default=True,
        metadata={
            "help": "Compress the quantization statistics through double quantization (--bits 4)."
        },
    )
    quant_type: str = field(
        default="nf4",
        metadata={"help": "Quantization data type for --bits 4: nf4 or fp4."},
    )
    bits: int = field(
        default=16,
        metadata={
            "help": "Weight precision of the language model: 16, or 8 / 4 for bitsandbytes quantization."
        },
    )
    lora_enable: bool = field(
        default=False,
        metadata={
            "help": "Train LoRA adapters on the language model's linear layers (plus the projector)."
        },
    )
    lora_r: int = field(default=64, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(
        default=16, metadata={"help": "LoRA scaling numerator (the update is scaled by alpha / r)."}
    )
    lora_dropout: float = field(
        default=0.05, metadata={"help": "Dropout on the LoRA input, in [0, 1)."}
    )
    lora_weight_path: str = field(
        default="",
        metadata={"help": "Accepted for upstream compatibility; unused (upstream never reads it)."},
    )
    lora_bias: str = field(
        default="none",
        metadata={"help": "Which biases LoRA trains and saves: none, all or lora_only."},
    )
    mm_projector_lr: float | None = field(
        default=None,
        metadata={
            "help": "Separate learning rate for the projector (its own optimizer groups); None: --learning_rate."
        },
    )
    group_by_modality_length: bool = field(
        default=False,
        metadata={"help": "Batch image and text-only samples separately, each grouped by length."},
    )
    # Run guards (llava/train/guards.py, docs/TRAINING.md "Exit statuses").
    max_nonfinite_steps: int = field(
        default=3,
        metadata={
            "help": "Stop the run (exit status 3) when this many optimizer steps in a row were skipped for "
            "overflow; a non-finite loss or gradient norm stops it at once."
        },
    )
    # Deviation from upstream: transformers replaces a NaN/inf step loss by the running mean in
    # the logs (so a diverged run logs 0 or a plausible loss); here NaN is logged as NaN.
    logging_nan_inf_filter: bool = field(
        default=False,
        metadata={"help": "Replace a NaN/inf step loss by the running mean in the logs (off: NaN shows as NaN)."},
    )


# The legacy flags that are fields of LegacyTrainingFlags (--gradient_checkpointing is transformers'
# own, mirrored from --activation_checkpointing after __post_init__: mapped on the command line only).
_OWN_LEGACY_FLAGS = tuple(
    flag for flag in LEGACY_FLAGS if flag.old in {item.name for item in dataclasses.fields(LegacyTrainingFlags)}
)
_OWN_LEGACY_AND_TARGET_FIELDS = tuple(
    {name: None for flag in _OWN_LEGACY_FLAGS for name in (flag.old, flag.new) if name is not None}
)


# --------------------------------------------------------------------------------------------
# Validation: every check is a small function returning its problems (each with the fix).
# --------------------------------------------------------------------------------------------


class ArgumentError(ValueError):
    """Every problem found with a training command line, raised together before anything loads."""

    def __init__(self, problems: Sequence[str]):
        self.problems = list(problems)
        count = len(self.problems)
        lines = "\n".join(f"  - {problem}" for problem in self.problems)
        super().__init__(
            f"{count} problem{'s' if count != 1 else ''} with the training arguments:\n{lines}"
        )


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def _enum_value(value: Any) -> Any:
    return getattr(value, "value", value)


def _deepspeed_config(value: Any) -> tuple[dict | None, str | None]:
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
            f"--deepspeed: {where} is not valid JSON ({error.msg} at line {error.lineno}, "
            f"column {error.colno}); fix the file or use scripts/zero2.json"
        )
    if not isinstance(config, dict):
        return (
            None,
            f"--deepspeed: {where} holds a JSON {type(config).__name__}, not an object; use scripts/zero2.json",
        )
    return config, None


def _zero_stage(config: dict) -> Any:
    zero = config.get("zero_optimization") or {}
    return zero.get("stage", 0) if isinstance(zero, dict) else None


def _check_deepspeed(model_args, data_args, training_args) -> list[str]:
    value = getattr(training_args, "deepspeed", None)
    if not value:
        return []
    config, problem = _deepspeed_config(value)
    if problem:
        return [problem]
    stage = _zero_stage(config)
    if stage not in (0, 1, 2, 3):
        return [
            f"--deepspeed: zero_optimization.stage is {stage!r}; use 0, 1, 2 or 3 (scripts/zero2.json has 2)"
        ]
    return []


def _check_quantization(model_args, data_args, training_args) -> list[str]:
    problems = []
    bits = training_args.bits
    if bits not in (4, 8, 16):
        problems.append(f"--bits {bits}: use 16 (no quantization), 8 or 4 (QLoRA)")
    if training_args.quant_type not in ("nf4", "fp4"):
        problems.append(
            f"--quant_type {training_args.quant_type}: use nf4 (QLoRA's default) or fp4"
        )
    if bits in (4, 8):
        if not training_args.lora_enable and not model_args.tune_mm_mlp_adapter:
            problems.append(
                f"--bits {bits} without --lora_enable True: quantized weights cannot be trained; "
                "add --lora_enable True (QLoRA) or use --bits 16"
            )
        deepspeed = getattr(training_args, "deepspeed", None)
        if deepspeed:
            config, problem = _deepspeed_config(deepspeed)
            if config is not None and _zero_stage(config) == 3:
                problems.append(
                    f"--bits {bits} with a ZeRO-3 DeepSpeed config ({deepspeed}): ZeRO-3 cannot partition "
                    "quantized weights; use --deepspeed ./scripts/zero2.json"
                )
    return problems


def _check_precision(model_args, data_args, training_args) -> list[str]:
    problems = []
    if training_args.bf16 and training_args.fp16:
        problems.append(
            "--bf16 True and --fp16 True together: pick one (--bf16 True on Ampere or newer GPUs)"
        )
    if training_args.fp16 and getattr(training_args, "deepspeed", None) and not _cuda_available():
        problems.append(
            "--fp16 True under DeepSpeed on a machine without CUDA: DeepSpeed's CPU backend has no fp16; "
            "use --bf16 True or drop --fp16 (fp32)"
        )
    if getattr(training_args, "tf32", None) and not _cuda_available():
        problems.append("--tf32 True on a machine without CUDA: drop it (TF32 is a CUDA feature)")
    return problems


def _check_conversation_version(model_args, data_args, training_args) -> list[str]:
    try:
        from llava.conversation import conv_templates
    except ModuleNotFoundError as error:
        if error.name != "llava.conversation":
            raise
        return []  # the templates module is not in this checkout yet: nothing to check against
    # v0.5 is no template key: upstream's train() special-cases it (module default template).
    if model_args.version not in conv_templates and model_args.version != "v0.5":
        known = ", ".join(sorted([*conv_templates, "v0.5"]))
        return [
            f"--version {model_args.version}: not a conversation template; use one of {known} (v1 for LLaVA-1.5)"
        ]
    return []


_PROJECTOR_TYPE = re.compile(r"linear|identity|mlp([1-9][0-9]*)x_gelu")


def _check_vision(model_args, data_args, training_args) -> list[str]:
    problems = []
    if not _PROJECTOR_TYPE.fullmatch(str(model_args.mm_projector_type)):
        problems.append(
            f"--mm_projector_type {model_args.mm_projector_type}: use linear, mlp{{N}}x_gelu "
            "(mlp2x_gelu for LLaVA-1.5) or identity"
        )
    if model_args.mm_vision_select_feature not in ("patch", "cls_patch"):
        problems.append(
            f"--mm_vision_select_feature {model_args.mm_vision_select_feature}: use patch or cls_patch"
        )
    merge = str(model_args.mm_patch_merge_type)
    if merge.startswith("spatial"):
        problems.append(
            f"--mm_patch_merge_type {merge}: spatial merging is LLaVA-1.6 (anyres) only, not supported here; "
            "use flat"
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


def _check_trainable_parts(model_args, data_args, training_args) -> list[str]:
    """Combinations that leave nothing (or not what was asked for) to train."""
    problems = []
    if model_args.tune_mm_mlp_adapter:
        if model_args.vision_tower is None:
            problems.append(
                "--tune_mm_mlp_adapter without --vision_tower: there is no projector to train; add --vision_tower"
            )
        if training_args.freeze_mm_mlp_adapter:
            problems.append(
                "--tune_mm_mlp_adapter with --freeze_mm_mlp_adapter: nothing would train; drop one of them"
            )
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
            problems.append(
                f"--mm_projector_lr {training_args.mm_projector_lr}: use a positive learning rate"
            )
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


def _check_lora(model_args, data_args, training_args) -> list[str]:
    problems = []
    if training_args.lora_r <= 0:
        problems.append(
            f"--lora_r {training_args.lora_r}: use a positive rank (128 in the LLaVA-1.5 recipe)"
        )
    if training_args.lora_alpha <= 0:
        problems.append(
            f"--lora_alpha {training_args.lora_alpha}: use a positive value (256 in the recipe)"
        )
    if not 0 <= training_args.lora_dropout < 1:
        problems.append(
            f"--lora_dropout {training_args.lora_dropout}: use a probability in [0, 1) (0.05)"
        )
    if training_args.lora_bias not in ("none", "all", "lora_only"):
        problems.append(f"--lora_bias {training_args.lora_bias}: use none, all or lora_only")
    return problems


def _check_data(model_args, data_args, training_args) -> list[str]:
    problems = []
    if data_args.data_path is None:
        problems.append(
            "--data_path is missing: give the training JSON (a list of LLaVA conversation records)"
        )
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
        problems.append(
            f"--model_max_length {training_args.model_max_length}: use a positive length (2048)"
        )
    return problems


_CHECKS: tuple[Callable[[Any, Any, Any], list[str]], ...] = (
    _check_deepspeed,
    _check_quantization,
    _check_precision,
    _check_conversation_version,
    _check_vision,
    _check_trainable_parts,
    _check_lora,
    _check_data,
    check_run_inputs,
)


# [patch 0001-eval-between-epochs]
_CHECKS = (*_CHECKS, validate_evaluation_args)
# [/patch 0001-eval-between-epochs]


def validate(
    model_args: ModelArguments,
    data_args: DataArguments,
    training_args: TrainingArguments | types.SimpleNamespace,
) -> list[str]:
    """Return every problem with these arguments (empty when they are fine), each with its fix.

    ``training_args`` is a ``TrainingArguments`` or any object with its attributes
    (``parse_args`` passes the parsed values before transformers' own checks run).
    Nothing is loaded; only files named by the flags are looked at.
    """
    problems: list[str] = []
    for check in _CHECKS:
        problems += check(model_args, data_args, training_args)
    return problems


# --------------------------------------------------------------------------------------------
# parse_args: rewrite, parse, validate, then build.
# --------------------------------------------------------------------------------------------


def _init_field_names(dataclass_type: type) -> set[str]:
    return {item.name for item in dataclasses.fields(dataclass_type) if item.init}


def given_flags(argv: Sequence[str]) -> frozenset[str]:
    """The field names a command line names (``--a-b=c`` and ``--a_b c`` both give ``a_b``)."""
    return frozenset(
        token[2:].partition("=")[0].replace("-", "_") for token in argv if token.startswith("--") and token != "--"
    )


def argument_parser() -> transformers.HfArgumentParser:
    """The parser of the three dataclasses; a bare ``--flag`` of a ``bool | None`` field means True."""
    parser = transformers.HfArgumentParser(
        (ModelArguments, DataArguments, TrainingArguments), allow_abbrev=False, exit_on_error=False
    )
    # HfArgumentParser wants a value after a `bool | None` flag (--tf32, --eval_generate ...);
    # upstream's scripts pass some bare, as for plain booleans.
    for action in parser._actions:
        if action.type is string_to_bool and action.nargs is None:
            action.nargs, action.const = "?", True
    return parser


def parse_args(
    argv: Sequence[str] | None = None,
) -> tuple[ModelArguments, DataArguments, TrainingArguments]:
    """Parse a training command line (default ``sys.argv[1:]``) into the three dataclasses.

    Raises ``ArgumentError`` listing every problem (unknown flags, bad values, bad
    combinations) before any model, tokenizer or data is loaded.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    problems: list[str] = []
    parser = argument_parser()
    try:
        namespace, unknown = parser.parse_known_args(argv)
    except argparse.ArgumentError as error:
        raise ArgumentError([*problems, str(error)]) from error
    if unknown:
        problems.append(
            f"unknown flag(s) {' '.join(unknown)}: not an upstream LLaVA or transformers 5 flag; "
            "see --help for the accepted ones"
        )
    values = vars(namespace)
    model_args = ModelArguments(**{k: values[k] for k in _init_field_names(ModelArguments)})
    data_args = DataArguments(**{k: values[k] for k in _init_field_names(DataArguments)})
    training_values = {k: values[k] for k in _init_field_names(TrainingArguments)}
    given = given_flags(argv)
    problems += apply_legacy_flags(training_values, given)
    fit_to_machine(training_values, given, cuda_available=_cuda_available())
    # Validate the raw values first: TrainingArguments.__post_init__ would stop at the first
    # problem it sees (and opens the DeepSpeed config), we want all of them, with their fixes.
    problems += validate(model_args, data_args, types.SimpleNamespace(**training_values))
    if problems:
        raise ArgumentError(problems)
    try:
        training_args = TrainingArguments(**training_values)
    except ValueError as error:
        raise ArgumentError([f"transformers rejected the training arguments: {error}"]) from error
    _connect_deepspeed_on_cpu(training_args)
    return model_args, data_args, training_args


def _connect_deepspeed_on_cpu(training_args: TrainingArguments) -> None:
    """Give DeepSpeed the process group that ``--use_cpu`` made, as transformers does on GPUs.

    With ``use_cpu`` transformers starts torch.distributed (gloo) itself and skips
    ``deepspeed.init_distributed``; ZeRO-3's ``zero.Init`` inside ``from_pretrained`` then
    sees a world of 1 and rejects the batch sizes ("8 != 4 * 1 * 1" with two processes).
    """
    import torch.distributed

    if not (
        training_args.use_cpu and training_args.deepspeed and torch.distributed.is_initialized()
    ):
        return
    import deepspeed
    from deepspeed import comm

    if not comm.is_initialized():
        deepspeed.init_distributed(dist_backend="gloo")
        logger.info(
            "DeepSpeed on the CPU: using the gloo process group of %d processes",
            comm.get_world_size(),
        )
