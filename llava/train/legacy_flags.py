"""The transformers-4.37 flags upstream's scripts still pass, as fields that warn and map.

``TrainingArguments`` carries :class:`LegacyTrainingFlags` (so ``--help`` lists them)
and maps them in ``__post_init__`` with one deprecation note each, as TRL's
``sft_config.py`` does; ``parse_args`` maps them before validating. docs/TRAINING.md.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from transformers.hf_argparser import string_to_bool

logger = logging.getLogger("llava")

__all__ = ["LEGACY_FLAGS", "LegacyFlag", "LegacyTrainingFlags", "apply_legacy_flags", "fit_to_machine"]


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
    LegacyFlag("evaluation_strategy", "eval_strategy", "renamed to --eval_strategy in transformers 5"),
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


_TF32_NOTE = "--tf32 True ignored: TF32 is a CUDA (Ampere or newer) feature and this machine has no CUDA"
_USE_CPU_NOTE = "no CUDA device: setting --use_cpu True (DeepSpeed runs its processes on the CPU over gloo)"


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
