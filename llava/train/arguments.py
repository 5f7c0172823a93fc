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
import logging
import sys
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import transformers
from transformers.hf_argparser import string_to_bool

from llava.train.argument_checks import (
    check_conversation_version,
    check_data,
    check_deepspeed,
    check_liger,
    check_lora,
    check_precision,
    check_quantization,
    check_trainable_parts,
    check_vision,
    cuda_available,
)
from llava.train.argument_checks import deepspeed_config as _deepspeed_config  # noqa: F401  (old name, tests/scripts)
from llava.train.argument_checks import zero_stage as _zero_stage  # noqa: F401  (old name, tests/scripts)
from llava.train.input_checks import check_run_inputs
from llava.train.legacy_flags import (
    LEGACY_FLAGS,
    LegacyFlag,
    LegacyTrainingFlags,
    apply_legacy_flags,
    fit_to_machine,
)
from llava.train.memory_plan import AUTO

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
        metadata={"help": "Hub id or local folder of the language model (or LLaVA checkpoint) to start from."},
    )
    version: str | None = field(
        default="v0",
        metadata={"help": "Conversation template key in llava.conversation.conv_templates (v1 for LLaVA-1.5)."},
    )
    freeze_backbone: bool = field(
        default=False,
        metadata={"help": "Freeze the language model's weights (model.model) before anything else is attached."},
    )
    tune_mm_mlp_adapter: bool = field(
        default=False,
        metadata={"help": "Stage-1 pretraining: train only the projector and save only mm_projector.bin."},
    )
    vision_tower: str | None = field(
        default=None,
        metadata={"help": "Hub id or folder of the CLIP vision tower; without it the model is text-only."},
    )
    mm_vision_select_layer: int | None = field(
        default=-1,
        metadata={"help": "Index into the tower's hidden_states used as image features (-2 for LLaVA-1.5)."},
    )
    pretrain_mm_mlp_adapter: str | None = field(
        default=None,
        metadata={"help": "Path to an mm_projector.bin from stage-1 pretraining to initialise the projector."},
    )
    mm_projector_type: str | None = field(
        default="linear",
        metadata={"help": "Projector architecture: linear, mlp{N}x_gelu (mlp2x_gelu for LLaVA-1.5) or identity."},
    )
    mm_use_im_start_end: bool = field(
        default=False,
        metadata={"help": "Wrap each image in <im_start> ... <im_end> tokens (adds them to the vocabulary)."},
    )
    mm_use_im_patch_token: bool = field(
        default=True,
        metadata={"help": "Add the <im_patch> token to the vocabulary (False for LLaVA-1.5)."},
    )
    mm_patch_merge_type: str | None = field(
        default="flat",
        metadata={"help": "How image patch features are merged; only 'flat' (LLaVA-1.5) is supported."},
    )
    mm_vision_select_feature: str | None = field(
        default="patch",
        metadata={"help": "'patch' drops the CLS position from the image features, 'cls_patch' keeps it."},
    )
    use_kernels: bool = field(
        default=False,
        metadata={
            "help": "Let transformers fetch and run Hub kernels (kernels-community/...) in the language model. "
            "Off by default: they need network, and the numbers would no longer match upstream's."
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
        metadata={"help": "Accepted for upstream compatibility: samples are always tokenized lazily."},
    )
    is_multimodal: bool = field(
        default=False,
        metadata={"help": "Treat the data as image+text; train() turns it on when --vision_tower is given."},
    )
    image_folder: str | None = field(
        default=None,
        metadata={"help": "Folder that the records' relative 'image' paths are resolved against."},
    )
    image_aspect_ratio: str = field(
        default="square",
        metadata={"help": "'square': resize as CLIP does; 'pad': pad to a square with the mean colour first."},
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
        metadata={"help": "Optimizer name (transformers OptimizerNames); upstream uses adamw_torch."},
    )
    remove_unused_columns: bool = field(
        default=False,
        metadata={"help": "Keep every collated key (images included) when batches reach the model."},
    )
    freeze_mm_mlp_adapter: bool = field(
        default=False,
        metadata={"help": "Keep the projector frozen."},
    )
    mpt_attn_impl: str | None = field(
        default="triton",
        metadata={"help": "Accepted for upstream compatibility; unused (MPT models are not supported)."},
    )
    model_max_length: int = field(
        default=512,
        metadata={"help": "Maximum sequence length in tokens. Sequences are right padded (and possibly truncated)."},
    )
    double_quant: bool = field(
        default=True,
        metadata={"help": "Compress the quantization statistics through double quantization (--bits 4)."},
    )
    quant_type: str = field(
        default="nf4",
        metadata={"help": "Quantization data type for --bits 4: nf4 or fp4."},
    )
    bits: int = field(
        default=16,
        metadata={"help": "Weight precision of the language model: 16, or 8 / 4 for bitsandbytes quantization."},
    )
    lora_enable: bool = field(
        default=False,
        metadata={"help": "Train LoRA adapters on the language model's linear layers (plus the projector)."},
    )
    lora_r: int = field(default=64, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(
        default=16, metadata={"help": "LoRA scaling numerator (the update is scaled by alpha / r)."}
    )
    lora_dropout: float = field(default=0.05, metadata={"help": "Dropout on the LoRA input, in [0, 1)."})
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
    use_liger: bool | None = field(
        default=None,
        metadata={
            "help": "Liger-Kernel's fused RMSNorm, RoPE, SwiGLU and linear + cross-entropy in the language model "
            "(pip install -e '.[gpu]'). Default: on where it can run (CUDA, package installed); True: asked for "
            "(one log line when it cannot run); False: off."
        },
    )
    # Set by `--gradient_checkpointing auto` (or `--activation_checkpointing auto`): the choice is
    # made once the model is loaded (llava/train/memory_plan.py); not a flag of its own.
    activation_checkpointing_auto: bool = field(
        default=False,
        init=False,
        metadata={"help": "Set by --gradient_checkpointing auto: decide once the model is loaded (not a flag)."},
    )
    trust_checkpoint_pickles: bool = field(
        default=False,
        metadata={
            "help": "Resume without checking the checkpoint's pickles (llava/train/checkpoint_safety.py). "
            "Only for a checkpoint you wrote yourself: a pickle can run code when it loads."
        },
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
        super().__init__(f"{count} problem{'s' if count != 1 else ''} with the training arguments:\n{lines}")


_CHECKS: tuple[Callable[[Any, Any, Any], list[str]], ...] = (
    check_deepspeed,
    check_liger,
    check_quantization,
    check_precision,
    check_conversation_version,
    check_vision,
    check_trainable_parts,
    check_lora,
    check_data,
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


_CHECKPOINTING_FLAGS = ("gradient_checkpointing", "activation_checkpointing")


def take_auto_checkpointing(argv: list[str]) -> tuple[list[str], bool]:
    """``argv`` with ``--gradient_checkpointing auto`` (or ``--activation_checkpointing auto``, ``=auto``)
    replaced by ``--activation_checkpointing=False`` (decided once the model is loaded), and whether
    it was there."""
    out, auto, position = [], False, 0
    while position < len(argv):
        token = argv[position]
        flag, equals, value = token.partition("=")
        name = flag[2:].replace("-", "_") if flag.startswith("--") else ""
        following = argv[position + 1] if position + 1 < len(argv) else ""
        if name in _CHECKPOINTING_FLAGS and (value if equals else following).lower() == AUTO:
            out.append("--activation_checkpointing=False")
            auto = True
            position += 1 if equals else 2
            continue
        out.append(token)
        position += 1
    return out, auto


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
    original = list(sys.argv[1:] if argv is None else argv)
    argv, checkpointing_auto = take_auto_checkpointing(original)
    problems: list[str] = []
    if checkpointing_auto and len(given_flags(original) & set(_CHECKPOINTING_FLAGS)) > 1:
        problems.append("--gradient_checkpointing and --activation_checkpointing are both given: pass only one")
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
    fit_to_machine(training_values, given, cuda_available=cuda_available())
    # Validate the raw values first: TrainingArguments.__post_init__ would stop at the first
    # problem it sees (and opens the DeepSpeed config), we want all of them, with their fixes.
    problems += validate(model_args, data_args, types.SimpleNamespace(**training_values))
    if problems:
        raise ArgumentError(problems)
    try:
        training_args = TrainingArguments(**training_values)
    except ValueError as error:
        raise ArgumentError([f"transformers rejected the training arguments: {error}"]) from error
    training_args.activation_checkpointing_auto = checkpointing_auto
    _connect_deepspeed_on_cpu(training_args)
    return model_args, data_args, training_args


def _connect_deepspeed_on_cpu(training_args: TrainingArguments) -> None:
    """Give DeepSpeed the process group that ``--use_cpu`` made, as transformers does on GPUs.

    With ``use_cpu`` transformers starts torch.distributed (gloo) itself and skips
    ``deepspeed.init_distributed``; ZeRO-3's ``zero.Init`` inside ``from_pretrained`` then
    sees a world of 1 and rejects the batch sizes ("8 != 4 * 1 * 1" with two processes).
    """
    import torch.distributed

    if not (training_args.use_cpu and training_args.deepspeed and torch.distributed.is_initialized()):
        return
    import deepspeed
    from deepspeed import comm

    if not comm.is_initialized():
        deepspeed.init_distributed(dist_backend="gloo")
        logger.info(
            "DeepSpeed on the CPU: using the gloo process group of %d processes",
            comm.get_world_size(),
        )
