"""Tests for scripts/zero*.json: each loads, has upstream's stage and "auto" fields, and DeepSpeed accepts it.

DeepSpeed's own config class (``deepspeed.runtime.config.DeepSpeedConfig``) validates a
config without starting a distributed job; transformers fills the "auto" values first,
exactly as the Trainer does (``HfTrainerDeepSpeedConfig``), with a stand-in model that
only has a hidden size.
"""

import json
import re
import shlex
import types
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = REPO_ROOT / "scripts"

CONFIGS = {"zero2.json": 2, "zero3.json": 3, "zero3_offload.json": 3}
AUTO_FIELDS = ("train_micro_batch_size_per_gpu", "train_batch_size", "gradient_accumulation_steps")


@pytest.fixture(autouse=True)
def forget_zero3():
    """A TrainingArguments with a ZeRO-3 config registers itself process-wide; undo that."""
    yield
    from transformers.integrations.deepspeed import unset_hf_deepspeed_config

    unset_hf_deepspeed_config()


def _autos(value, where=""):
    if isinstance(value, dict):
        return [found for key, item in value.items() for found in _autos(item, f"{where}.{key}")]
    return [where] if value == "auto" else []


@pytest.mark.parametrize(("name", "stage"), CONFIGS.items())
def test_config_loads_with_upstream_stage_and_auto_fields(name, stage):
    config = json.loads((SCRIPTS / name).read_text())
    assert config["zero_optimization"]["stage"] == stage
    assert config["fp16"]["enabled"] == "auto" and config["bf16"]["enabled"] == "auto"
    for key in AUTO_FIELDS:
        assert config[key] == "auto", key
    assert config["zero_optimization"]["reduce_bucket_size"] == "auto"
    if stage == 3:
        zero = config["zero_optimization"]
        # ZeRO-3 must gather the partitioned weights when the model is saved.
        assert zero.get(
            "stage3_gather_16bit_weights_on_model_save",
            zero.get("gather_16bit_weights_on_model_save"),
        )
        assert zero["stage3_prefetch_bucket_size"] == "auto"
        assert zero["stage3_param_persistence_threshold"] == "auto"


def test_offload_config_offloads_to_cpu():
    zero = json.loads((SCRIPTS / "zero3_offload.json").read_text())["zero_optimization"]
    assert zero["offload_optimizer"]["device"] == "cpu" and zero["offload_param"]["device"] == "cpu"


@pytest.mark.parametrize("bf16", [True, False], ids=["bf16", "fp32"])
@pytest.mark.parametrize(("name", "stage"), CONFIGS.items())
def test_deepspeed_accepts_config_once_autos_are_filled(name, stage, bf16, tmp_path):
    from deepspeed.runtime.config import DeepSpeedConfig
    from transformers import TrainingArguments

    args = TrainingArguments(
        output_dir=str(tmp_path),
        deepspeed=str(SCRIPTS / name),
        use_cpu=True,
        bf16=bf16,
        per_device_train_batch_size=4,
        gradient_accumulation_steps=2,
        report_to="none",
    )
    hf_config = args.hf_deepspeed_config
    stand_in_model = types.SimpleNamespace(config=types.SimpleNamespace(hidden_size=64))
    hf_config.trainer_config_finalize(args, stand_in_model, num_training_steps=100)
    assert _autos(hf_config.config) == []

    config = DeepSpeedConfig(hf_config.config)
    assert config.zero_enabled and config.zero_optimization_stage == stage
    assert config.train_micro_batch_size_per_gpu == 4
    assert config.gradient_accumulation_steps == 2
    assert config.train_batch_size == 8  # one process: 4 x 2 x 1
    assert config.bfloat16_config.enabled is bf16 and config.float16_config.enabled is False
    assert config.zero_config.reduce_bucket_size == 64 * 64
    if stage == 3:
        assert config.zero_config.gather_16bit_weights_on_model_save is True


def test_the_project_check_reads_each_stage():
    from llava.train.arguments import _deepspeed_config, _zero_stage

    for name, stage in CONFIGS.items():
        config, problem = _deepspeed_config(str(SCRIPTS / name))
        assert problem is None and _zero_stage(config) == stage


# --------------------------------------------------------------------------------------------
# Every quantized (--bits 4 / 8) training script uses ZeRO-2.
# --------------------------------------------------------------------------------------------

_TRAIN_SCRIPT = re.compile(r"(^|/)llava/train/train(_mem)?\.py$|^llava\.train\.train(_mem)?$")
_ASSIGNMENT = re.compile(r"^\s*(?:export\s+)?([A-Za-z_]\w*)=(.*)$")
_VARIABLE = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}|\$([A-Za-z_]\w*)")


def _expand(text: str, variables: dict[str, str]) -> str:
    """Shell-like expansion with the script's own assignments and ${NAME:-default} defaults."""

    def replace(match: re.Match) -> str:
        name = match.group(1) or match.group(3)
        default = match.group(2)
        return variables.get(name, _expand(default, variables) if default is not None else f"<{name}>")

    return _VARIABLE.sub(replace, text)


def training_flag_lists(script: Path) -> list[list[str]]:
    variables: dict[str, str] = {}
    commands = []
    for line in script.read_text().replace("\\\n", " ").splitlines():
        if line.lstrip().startswith("#"):
            continue
        assignment = _ASSIGNMENT.match(line)
        if assignment:
            variables[assignment.group(1)] = " ".join(
                shlex.split(_expand(assignment.group(2), variables), comments=True)
            )
            continue
        tokens = shlex.split(line, comments=True)
        starts = [i for i, token in enumerate(tokens) if _TRAIN_SCRIPT.search(token)]
        if starts:
            commands.append([_expand(token, variables) for token in tokens[starts[0] + 1 :]])
    return commands


def _flag_value(flags: list[str], name: str) -> str | None:
    """The last value given to --name (argparse semantics), in either --name v or --name=v form."""
    value = None
    for index, token in enumerate(flags):
        if token == f"--{name}" and index + 1 < len(flags):
            value = flags[index + 1]
        elif token.startswith(f"--{name}="):
            value = token.split("=", 1)[1]
    return value


def test_every_quantized_script_points_at_zero2():
    quantized = []
    for script in sorted(SCRIPTS.rglob("*.sh")):
        for flags in training_flag_lists(script):
            if _flag_value(flags, "bits") in ("4", "8"):
                quantized.append(script.relative_to(REPO_ROOT).as_posix())
                deepspeed = _flag_value(flags, "deepspeed")
                assert deepspeed is not None and Path(deepspeed).name == "zero2.json", (
                    f"{script}: --bits {_flag_value(flags, 'bits')} runs with --deepspeed {deepspeed}; "
                    "ZeRO-3 cannot partition quantized weights, use ./scripts/zero2.json"
                )
    assert "scripts/v1_5/finetune_task_qlora.sh" in quantized
