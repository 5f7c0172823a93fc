"""``adapter_config.json`` that upstream's peft (0.10.0) and today's peft both load.

Today's peft writes every field of its ``LoraConfig`` (``alora_invocation_tokens``,
``lora_bias``, ``target_parameters``, ...); peft 0.10.0, which upstream LLaVA
pins, passes every key to ``LoraConfig(**kwargs)`` and stops at the first one
it does not know. So a saved config keeps only the fields peft 0.10.0 has. A
newer field still at its default means nothing old peft cannot do and is
dropped; one set to anything else is a setting old peft cannot express, and
saving it is refused (with every such field named), never silently dropped.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from llava.utils import write_atomic

ADAPTER_CONFIG_FILE = "adapter_config.json"

# The fields of peft 0.10.0's LoraConfig (with those of PeftConfig it inherits),
# from peft/tuners/lora/config.py and peft/config.py of that release.
PEFT_0_10_LORA_FIELDS = frozenset(
    {
        "peft_type",
        "auto_mapping",
        "base_model_name_or_path",
        "revision",
        "task_type",
        "inference_mode",
        "r",
        "target_modules",
        "lora_alpha",
        "lora_dropout",
        "fan_in_fan_out",
        "bias",
        "use_rslora",
        "modules_to_save",
        "init_lora_weights",
        "layers_to_transform",
        "layers_pattern",
        "rank_pattern",
        "alpha_pattern",
        "megatron_config",
        "megatron_core",
        "loftq_config",
        "use_dora",
        "layer_replication",
    }
)
# Values of fields that peft 0.10.0 has but with fewer choices than today's.
PEFT_0_10_INIT_LORA_WEIGHTS = (True, False, "gaussian", "loftq")
# Bookkeeping written by newer peft that carries no setting.
METADATA_FIELDS = frozenset({"peft_version"})


class AdapterConfigError(ValueError):
    """A LoRA setting that peft 0.10.0 (upstream's pin) cannot load."""


def _json_value(value: Any) -> Any:
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    return json.loads(json.dumps(value, default=str))


def _current_defaults() -> dict[str, Any]:
    from peft import LoraConfig

    defaults = {}
    for field in dataclasses.fields(LoraConfig):
        if field.default is not dataclasses.MISSING:
            defaults[field.name] = _json_value(field.default)
        elif field.default_factory is not dataclasses.MISSING:
            defaults[field.name] = _json_value(field.default_factory())
    return defaults


def portable_problems(config: dict[str, Any], defaults: dict[str, Any] | None = None) -> list[str]:
    """Every setting in ``config`` (a saved adapter config) that peft 0.10.0 cannot express."""
    defaults = _current_defaults() if defaults is None else defaults
    problems = []
    for key, value in config.items():
        if key in PEFT_0_10_LORA_FIELDS or key in METADATA_FIELDS:
            continue
        if key not in defaults:
            problems.append(f"{key}={value!r} (unknown to peft 0.10.0)")
        elif _json_value(value) != defaults[key]:
            problems.append(f"{key}={value!r} (peft 0.10.0 has no such setting; only {defaults[key]!r} is portable)")
    if config.get("peft_type", "LORA") != "LORA":
        problems.append(f"peft_type={config['peft_type']!r} (upstream LLaVA loads LoRA adapters only)")
    if config.get("init_lora_weights", True) not in PEFT_0_10_INIT_LORA_WEIGHTS:
        problems.append(
            f"init_lora_weights={config['init_lora_weights']!r} "
            f"(peft 0.10.0 knows {', '.join(map(repr, PEFT_0_10_INIT_LORA_WEIGHTS))})"
        )
    return problems


def portable_adapter_config(config: dict[str, Any], where: str = ADAPTER_CONFIG_FILE) -> dict[str, Any]:
    """``config`` with only peft 0.10.0's fields; raises ``AdapterConfigError`` naming every unportable one."""
    problems = portable_problems(config)
    if problems:
        raise AdapterConfigError(
            f"{where}: these LoRA settings cannot be saved in a form upstream LLaVA's peft 0.10.0 loads: "
            + "; ".join(problems)
        )
    return {key: _json_value(value) for key, value in config.items() if key in PEFT_0_10_LORA_FIELDS}


def check_lora_config(lora_config) -> None:
    """Refuse, before training starts, a ``peft.LoraConfig`` whose saved form old peft could not load."""
    portable_adapter_config(lora_config.to_dict(), where="the LoRA configuration")


def make_adapter_config_portable(folder: str | os.PathLike) -> Path:
    """Rewrite ``folder/adapter_config.json`` (atomically) with only peft 0.10.0's fields."""
    path = Path(folder) / ADAPTER_CONFIG_FILE
    config = json.loads(path.read_text(encoding="utf-8"))
    portable = portable_adapter_config(config, where=str(path))
    write_atomic(path, json.dumps(portable, indent=2, sort_keys=True) + "\n")
    return path
