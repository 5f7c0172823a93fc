"""Tests for llava/train/arguments.py: upstream flags and defaults, legacy flags, validation, scripts."""

import dataclasses
import logging
import os
import re
import shlex
import subprocess
import sys
import types
from pathlib import Path

import pytest

from llava.train import argument_checks, arguments, legacy_flags
from llava.train.arguments import (
    LEGACY_FLAGS,
    ArgumentError,
    DataArguments,
    ModelArguments,
    TrainingArguments,
    argument_parser,
    fit_to_machine,
    parse_args,
    validate,
)

REPO_ROOT = Path(__file__).resolve().parents[2]

# Upstream's train.py flags: every upstream flag with its dataclass and default.
UPSTREAM_FLAGS = [
    (ModelArguments, "model_name_or_path", "facebook/opt-125m"),
    (ModelArguments, "version", "v0"),
    (ModelArguments, "freeze_backbone", False),
    (ModelArguments, "tune_mm_mlp_adapter", False),
    (ModelArguments, "vision_tower", None),
    (ModelArguments, "mm_vision_select_layer", -1),
    (ModelArguments, "pretrain_mm_mlp_adapter", None),
    (ModelArguments, "mm_projector_type", "linear"),
    (ModelArguments, "mm_use_im_start_end", False),
    (ModelArguments, "mm_use_im_patch_token", True),
    (ModelArguments, "mm_patch_merge_type", "flat"),
    (ModelArguments, "mm_vision_select_feature", "patch"),
    (DataArguments, "data_path", None),
    (DataArguments, "lazy_preprocess", False),
    (DataArguments, "is_multimodal", False),
    (DataArguments, "image_folder", None),
    (DataArguments, "image_aspect_ratio", "square"),
    (TrainingArguments, "cache_dir", None),
    (TrainingArguments, "optim", "adamw_torch"),
    (TrainingArguments, "remove_unused_columns", False),
    (TrainingArguments, "freeze_mm_mlp_adapter", False),
    (TrainingArguments, "mpt_attn_impl", "triton"),
    (TrainingArguments, "model_max_length", 512),
    (TrainingArguments, "double_quant", True),
    (TrainingArguments, "quant_type", "nf4"),
    (TrainingArguments, "bits", 16),
    (TrainingArguments, "lora_enable", False),
    (TrainingArguments, "lora_r", 64),
    (TrainingArguments, "lora_alpha", 16),
    (TrainingArguments, "lora_dropout", 0.05),
    (TrainingArguments, "lora_weight_path", ""),
    (TrainingArguments, "lora_bias", "none"),
    (TrainingArguments, "mm_projector_lr", None),
    (TrainingArguments, "group_by_modality_length", False),
]

# Flags this project adds (not upstream), with their defaults.
PROJECT_FLAGS = [(DataArguments, "skip_flagged_samples", False)]

TEMPLATE_KEYS = ("v0", "v1", "vicuna_v1", "llava_v1", "llava_llama_2", "plain", "v0_plain")


@pytest.fixture(autouse=True)
def cpu_machine_with_templates(monkeypatch):
    """Every test sees a machine without CUDA and a stand-in llava.conversation.

    The stand-in keeps these tests independent of the templates module (tested on its
    own); ``test_real_templates_know_script_versions`` checks the real one.
    """
    monkeypatch.setattr(arguments, "cuda_available", lambda: False)
    monkeypatch.setattr(argument_checks, "cuda_available", lambda: False)
    fake = types.ModuleType("llava.conversation")
    fake.conv_templates = dict.fromkeys(TEMPLATE_KEYS)
    monkeypatch.setitem(sys.modules, "llava.conversation", fake)
    yield
    # A TrainingArguments with a ZeRO-3 config registers itself process-wide (weakly):
    # make sure no later test believes ZeRO-3 is on.
    from transformers.integrations.deepspeed import unset_hf_deepspeed_config

    unset_hf_deepspeed_config()


@pytest.fixture()
def paths(tmp_path):
    """Data file, image folder, output folder, projector file and DeepSpeed configs in tmp_path."""
    data = tmp_path / "train.json"
    data.write_text("[]")
    images = tmp_path / "images"
    images.mkdir()
    projector = tmp_path / "mm_projector.bin"
    projector.write_bytes(b"")
    broken = tmp_path / "broken.json"
    broken.write_text('{"zero_optimization": {"stage": 2,}}')
    bad_stage = tmp_path / "stage7.json"
    bad_stage.write_text('{"zero_optimization": {"stage": 7}}')
    return types.SimpleNamespace(
        data=str(data),
        images=str(images),
        output=str(tmp_path / "out"),
        projector=str(projector),
        zero2=str(REPO_ROOT / "scripts" / "zero2.json"),
        zero3=str(REPO_ROOT / "scripts" / "zero3.json"),
        broken=str(broken),
        bad_stage=str(bad_stage),
        missing=str(tmp_path / "missing"),
    )


def base_argv(paths) -> list[str]:
    return ["--data_path", paths.data, "--output_dir", paths.output, "--report_to", "none"]


# ------------------------------------------------------------------------------------------
# Flags and defaults
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dataclass_type", "name", "default"),
    UPSTREAM_FLAGS,
    ids=[name for _, name, _ in UPSTREAM_FLAGS],
)
def test_upstream_flag_exists_with_upstream_default(dataclass_type, name, default):
    fields = {item.name: item for item in dataclasses.fields(dataclass_type)}
    assert name in fields and fields[name].init
    assert fields[name].default == default
    assert fields[name].metadata.get("help")


@pytest.mark.parametrize(
    ("dataclass_type", "name", "default"), PROJECT_FLAGS, ids=[name for _, name, _ in PROJECT_FLAGS]
)
def test_project_flag_exists_with_its_default(dataclass_type, name, default, paths):
    test_upstream_flag_exists_with_upstream_default(dataclass_type, name, default)
    parsed = dict(
        zip(
            (ModelArguments, DataArguments, TrainingArguments),
            parse_args(base_argv(paths)),
            strict=True,
        )
    )
    assert getattr(parsed[dataclass_type], name) == default


def test_every_field_we_declare_has_help():
    own_training_fields = {
        name
        for cls in TrainingArguments.__mro__
        if cls.__module__.startswith("llava.")
        for name in vars(cls).get("__annotations__", {})
    }
    for dataclass_type in (ModelArguments, DataArguments, TrainingArguments):
        for item in dataclasses.fields(dataclass_type):
            if dataclass_type is TrainingArguments and item.name not in own_training_fields:
                continue  # transformers' own fields carry transformers' help
            assert item.metadata.get("help"), f"{dataclass_type.__name__}.{item.name} has no help"


def test_runtime_attributes_are_not_flags(paths):
    model_args, data_args, _ = parse_args(base_argv(paths))
    assert data_args.image_processor is None and data_args.mm_use_im_start_end is False
    with pytest.raises(ArgumentError, match="unknown flag"):
        parse_args([*base_argv(paths), "--image_processor", "x"])


def test_defaults_parse(paths):
    model_args, data_args, training_args = parse_args(base_argv(paths))
    for dataclass_type, name, default in UPSTREAM_FLAGS:
        if name == "data_path":
            continue
        instance = {ModelArguments: model_args, DataArguments: data_args}.get(dataclass_type, training_args)
        assert argument_checks.enum_value(getattr(instance, name)) == default, name
    assert isinstance(training_args, TrainingArguments)
    assert validate(model_args, data_args, training_args) == []


# ------------------------------------------------------------------------------------------
# Legacy transformers-4.37 flags
# ------------------------------------------------------------------------------------------

# (argv, expected attributes of TrainingArguments, text of the note)
LEGACY_CASES = [
    (["--evaluation_strategy", "no"], {"eval_strategy": "no"}, "--eval_strategy"),
    (["--evaluation_strategy=no"], {"eval_strategy": "no"}, "--eval_strategy"),
    (["--evaluation-strategy", "no"], {"eval_strategy": "no"}, "--eval_strategy"),
    (["--warmup_ratio", "0.03"], {"warmup_steps": 0.03}, "ratio"),
    (["--warmup_ratio=0.1"], {"warmup_steps": 0.1}, "ratio"),
    (
        ["--group_by_length"],
        {"train_sampling_strategy": "group_by_length"},
        "train_sampling_strategy",
    ),
    (
        ["--group_by_length", "True"],
        {"train_sampling_strategy": "group_by_length"},
        "train_sampling_strategy",
    ),
    (["--group_by_length=False"], {"train_sampling_strategy": "random"}, "dropped"),
    (["--overwrite_output_dir"], {}, "resumes from the newest checkpoint"),
    (["--overwrite_output_dir", "True"], {}, "resumes from the newest checkpoint"),
    (["--logging_dir", "runs/x"], {}, "TENSORBOARD_LOGGING_DIR"),
    (["--logging_dir=runs/x"], {}, "TENSORBOARD_LOGGING_DIR"),
    (["--no_cuda"], {"use_cpu": True}, "--use_cpu"),
    (["--no_cuda", "True"], {"use_cpu": True}, "--use_cpu"),
    (["--save_safetensors", "False"], {}, "always saved as safetensors"),
    (["--save_safetensors"], {}, "always saved as safetensors"),
    (["--per_gpu_train_batch_size", "3"], {"per_device_train_batch_size": 3}, "per_device"),
    (["--per_gpu_eval_batch_size=5"], {"per_device_eval_batch_size": 5}, "per_device"),
    (["--include_inputs_for_metrics"], {"include_for_metrics": ["inputs"]}, "include_for_metrics"),
    (
        ["--gradient_checkpointing", "True"],
        {"activation_checkpointing": True, "gradient_checkpointing": True},
        "--activation_checkpointing",
    ),
]


def test_every_legacy_flag_has_a_case():
    covered = {argv[0][2:].split("=")[0].replace("-", "_") for argv, _, _ in LEGACY_CASES}
    assert covered == {flag.old for flag in LEGACY_FLAGS}


@pytest.mark.parametrize(("legacy", "expected", "note"), LEGACY_CASES, ids=lambda x: str(x))
def test_legacy_flag_is_mapped_with_a_note(paths, caplog, legacy, expected, note):
    # The legacy flag comes first so that a flag without a value is followed by another flag.
    with caplog.at_level(logging.INFO, logger="llava"):
        _, _, training_args = parse_args([*legacy, *base_argv(paths)])
    for name, value in expected.items():
        assert argument_checks.enum_value(getattr(training_args, name)) == value
    notes = [r.getMessage() for r in caplog.records if r.name == "llava" and r.levelno == logging.WARNING]
    assert len(notes) == 1 and "deprecated flag" in notes[0] and note in notes[0]


@pytest.mark.parametrize(
    ("legacy", "problem"),
    [
        (["--warmup_ratio", "1.5"], "--warmup_steps N"),
        (["--warmup_ratio", "abc"], "--warmup_ratio abc"),
        (["--evaluation_strategy", "no", "--eval_strategy", "no"], "pass only --eval_strategy"),
        (["--group_by_length", "maybe"], "--group_by_length maybe"),
    ],
)
def test_unmappable_legacy_flag_is_a_problem(paths, legacy, problem):
    with pytest.raises(ArgumentError) as raised:
        parse_args([*base_argv(paths), *legacy])
    assert any(problem in p for p in raised.value.problems)


def test_legacy_flag_without_value_at_the_end_is_a_problem(paths):
    with pytest.raises(ArgumentError, match="--warmup_ratio needs a value"):
        parse_args([*base_argv(paths), "--warmup_ratio"])


@pytest.mark.parametrize("tf32", [["--tf32", "True"], ["--tf32=true"], ["--tf32"]])
def test_tf32_is_ignored_without_cuda(paths, caplog, tf32):
    with caplog.at_level(logging.WARNING, logger="llava"):
        _, _, training_args = parse_args([*tf32, *base_argv(paths)])
    assert training_args.tf32 is None
    assert any("--tf32 True ignored" in r.getMessage() for r in caplog.records)


def test_tf32_false_is_kept_without_cuda(paths):
    _, _, training_args = parse_args([*base_argv(paths), "--tf32", "False"])
    assert training_args.tf32 is False


def test_use_cpu_is_set_without_cuda(paths, caplog):
    with caplog.at_level(logging.INFO, logger="llava"):
        _, _, training_args = parse_args(base_argv(paths))
    assert training_args.use_cpu is True
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO and r.name == "llava"]
    assert infos == [legacy_flags._USE_CPU_NOTE]


def test_with_cuda_tf32_and_device_are_kept():
    values = {"tf32": True, "bf16": True, "use_cpu": False}
    fit_to_machine(values, frozenset({"tf32", "bf16"}), cuda_available=True)
    assert values == {"tf32": True, "bf16": True, "use_cpu": False}
    namespace, _ = argument_parser().parse_known_args(["--tf32", "--bf16", "True"])
    assert namespace.tf32 is True and namespace.bf16 is True  # bare bool | None flag gets its value


def test_without_cuda_an_explicit_use_cpu_is_respected():
    values = {"tf32": None, "use_cpu": False}
    fit_to_machine(values, frozenset({"use_cpu"}), cuda_available=False)
    assert values["use_cpu"] is False


# ------------------------------------------------------------------------------------------
# Validation
# ------------------------------------------------------------------------------------------

# (extra argv given as a function of `paths`, text the one problem must contain)
BAD_COMBINATIONS = {
    "bits": (lambda p: ["--bits", "5"], "--bits 5"),
    "quant_type": (lambda p: ["--quant_type", "int4"], "--quant_type int4"),
    "bits4_zero3": (
        lambda p: ["--bits", "4", "--lora_enable", "True", "--deepspeed", p.zero3],
        "use --deepspeed ./scripts/zero2.json",
    ),
    "bits8_no_lora": (lambda p: ["--bits", "8"], "add --lora_enable True"),
    "deepspeed_missing": (
        lambda p: ["--deepspeed", p.missing],
        "missing: no such file (looked for",
    ),
    "deepspeed_broken": (
        lambda p: ["--deepspeed", p.broken],
        "broken.json is not valid JSON (Expecting property name",
    ),
    "deepspeed_stage": (lambda p: ["--deepspeed", p.bad_stage], "zero_optimization.stage is 7"),
    "fp16_deepspeed_cpu": (lambda p: ["--fp16", "True", "--deepspeed", p.zero2], "use --bf16 True"),
    "bf16_and_fp16": (lambda p: ["--bf16", "True", "--fp16", "True"], "pick one"),
    "version": (lambda p: ["--version", "llava_v9"], "--version llava_v9"),
    "projector_type": (
        lambda p: ["--mm_projector_type", "mlp2x_relu"],
        "--mm_projector_type mlp2x_relu",
    ),
    "lora_r": (lambda p: ["--lora_r", "0"], "--lora_r 0"),
    "lora_alpha": (lambda p: ["--lora_alpha", "-16"], "--lora_alpha -16"),
    "lora_dropout_high": (lambda p: ["--lora_dropout", "1.0"], "--lora_dropout 1.0"),
    "lora_dropout_low": (lambda p: ["--lora_dropout", "-0.1"], "--lora_dropout -0.1"),
    "lora_bias": (lambda p: ["--lora_bias", "some"], "--lora_bias some"),
    "projector_lr_no_tower": (lambda p: ["--mm_projector_lr", "2e-5"], "no projector"),
    "projector_lr_frozen": (
        lambda p: [
            "--mm_projector_lr",
            "2e-5",
            "--vision_tower",
            "t",
            "--freeze_mm_mlp_adapter",
            "True",
        ],
        "frozen projector",
    ),
    "projector_lr_negative": (
        lambda p: ["--mm_projector_lr", "-1", "--vision_tower", "t"],
        "positive",
    ),
    "data_path_missing_file": (
        lambda p: ["--data_path", p.missing],
        "missing: no such file (looked for",
    ),
    "image_folder": (lambda p: ["--image_folder", p.missing], "no such folder"),
    "pretrain_adapter": (
        lambda p: ["--pretrain_mm_mlp_adapter", p.missing, "--vision_tower", "t"],
        "--pretrain_mm_mlp_adapter",
    ),
    "pretrain_adapter_no_tower": (
        lambda p: ["--pretrain_mm_mlp_adapter", p.projector],
        "text-only",
    ),
    "model_max_length": (lambda p: ["--model_max_length", "0"], "--model_max_length 0"),
    "tune_adapter_with_lora": (
        lambda p: ["--tune_mm_mlp_adapter", "True", "--vision_tower", "t", "--lora_enable", "True"],
        "saved untrained",
    ),
    "tune_and_freeze_adapter": (
        lambda p: [
            "--tune_mm_mlp_adapter",
            "True",
            "--vision_tower",
            "t",
            "--freeze_mm_mlp_adapter",
            "True",
        ],
        "nothing would train",
    ),
    "tune_adapter_no_tower": (lambda p: ["--tune_mm_mlp_adapter", "True"], "no projector to train"),
    "select_feature": (lambda p: ["--mm_vision_select_feature", "cls"], "patch or cls_patch"),
    "merge_spatial": (lambda p: ["--mm_patch_merge_type", "spatial_unpad"], "LLaVA-1.6"),
    "merge_other": (lambda p: ["--mm_patch_merge_type", "grid"], "use flat"),
    "anyres": (lambda p: ["--image_aspect_ratio", "anyres"], "LLaVA-1.6"),
    "aspect_other": (lambda p: ["--image_aspect_ratio", "crop"], "use pad"),
    "eval_without_data": (lambda p: ["--eval_strategy", "epoch"], "--eval_strategy no"),
    "unknown_flag": (lambda p: ["--lora_rank", "8"], "unknown flag(s) --lora_rank 8"),
}


@pytest.mark.parametrize("case", sorted(BAD_COMBINATIONS))
def test_bad_combination_is_reported_with_its_fix(paths, case):
    extra, expected = BAD_COMBINATIONS[case]
    with pytest.raises(ArgumentError) as raised:
        parse_args([*base_argv(paths), *extra(paths)])
    assert len(raised.value.problems) == 1, raised.value.problems
    assert expected in raised.value.problems[0]
    assert expected in str(raised.value)
    assert isinstance(raised.value, ValueError)


def test_missing_data_path_is_reported(paths):
    with pytest.raises(ArgumentError, match="--data_path is missing"):
        parse_args(["--output_dir", paths.output])


def test_all_problems_come_in_one_error(paths):
    cases = [
        "bits",
        "quant_type",
        "bf16_and_fp16",
        "version",
        "projector_type",
        "lora_r",
        "lora_dropout_high",
        "lora_bias",
        "projector_lr_no_tower",
        "image_folder",
        "merge_spatial",
        "anyres",
        "eval_without_data",
        "unknown_flag",
    ]
    argv = [*base_argv(paths), "--warmup_ratio", "2"]
    for case in cases:
        argv += BAD_COMBINATIONS[case][0](paths)
    with pytest.raises(ArgumentError) as raised:
        parse_args(argv)
    problems = raised.value.problems
    assert len(problems) == len(cases) + 1
    for case in cases:
        assert any(BAD_COMBINATIONS[case][1] in p for p in problems), case
    assert str(raised.value).startswith(f"{len(problems)} problems with the training arguments:")


def test_problems_are_found_before_transformers_builds_anything(paths, monkeypatch):
    def must_not_run(self):
        raise AssertionError("TrainingArguments was built despite bad arguments")

    monkeypatch.setattr(TrainingArguments, "__post_init__", must_not_run)
    with pytest.raises(ArgumentError, match="--bits 3"):
        parse_args([*base_argv(paths), "--bits", "3", "--deepspeed", paths.missing])


def test_transformers_own_rejection_becomes_an_argument_error(paths):
    with pytest.raises(ArgumentError, match="transformers rejected"):
        parse_args([*base_argv(paths), "--dataloader_prefetch_factor", "2"])


def test_badly_typed_value_becomes_an_argument_error(paths):
    with pytest.raises(ArgumentError, match="--bits"):
        parse_args([*base_argv(paths), "--bits", "four"])


@pytest.mark.parametrize("version", ["v1", "v0", "v0.5"])
def test_known_versions_are_accepted(paths, version):
    model_args, _, _ = parse_args([*base_argv(paths), "--version", version])
    assert model_args.version == version


def test_version_check_is_skipped_without_templates_module(paths, monkeypatch):
    monkeypatch.setitem(sys.modules, "llava.conversation", None)  # import now fails: module absent
    model_args, _, _ = parse_args([*base_argv(paths), "--version", "anything"])
    assert model_args.version == "anything"


def test_quantized_projector_pretraining_is_allowed(paths):
    # Stage-1 pretraining on a 4-bit language model trains only the (unquantized) projector.
    _, _, training_args = parse_args(
        [*base_argv(paths), "--bits", "4", "--tune_mm_mlp_adapter", "True", "--vision_tower", "t"]
    )
    assert training_args.bits == 4


def test_launcher_local_rank_flag_parses(paths):
    _, _, training_args = parse_args(["--local_rank=0", *base_argv(paths)])
    assert training_args.local_rank == 0


def test_deepspeed_gets_the_cpu_process_group(paths, monkeypatch):
    """Under a multi-process CPU launch, DeepSpeed's comm must wrap torch's gloo group."""
    import torch.distributed

    calls = []
    comm = types.SimpleNamespace(is_initialized=lambda: bool(calls), get_world_size=lambda: 2)
    fake_deepspeed = types.ModuleType("deepspeed")
    fake_deepspeed.comm = comm
    fake_deepspeed.init_distributed = lambda dist_backend: calls.append(dist_backend)
    monkeypatch.setitem(sys.modules, "deepspeed", fake_deepspeed)
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)
    use_cpu = types.SimpleNamespace(use_cpu=True, deepspeed=paths.zero2)
    arguments._connect_deepspeed_on_cpu(use_cpu)
    arguments._connect_deepspeed_on_cpu(use_cpu)  # already connected: nothing more
    assert calls == ["gloo"]
    arguments._connect_deepspeed_on_cpu(types.SimpleNamespace(use_cpu=True, deepspeed=None))
    assert calls == ["gloo"]


def test_validate_accepts_parsed_arguments(paths, monkeypatch):
    monkeypatch.chdir(REPO_ROOT)
    model_args, data_args, training_args = parse_args(upstream_recipe(paths))
    assert validate(model_args, data_args, training_args) == []


# ------------------------------------------------------------------------------------------
# Upstream's recipe and the shipped scripts
# ------------------------------------------------------------------------------------------


def upstream_recipe(paths) -> list[str]:
    """Upstream's scripts/v1_5/finetune_task_lora.sh flags, with tmp files for the data."""
    return [
        "--lora_enable", "True", "--lora_r", "128", "--lora_alpha", "256", "--mm_projector_lr", "2e-5",
        "--deepspeed", "./scripts/zero3.json",
        "--model_name_or_path", "liuhaotian/llava-v1.5-7b",
        "--version", "v1",
        "--data_path", paths.data,
        "--image_folder", paths.images,
        *upstream_recipe_tail(paths),
    ]  # fmt: skip


def upstream_recipe_tail(paths) -> list[str]:
    return [
        "--vision_tower", "openai/clip-vit-large-patch14-336",
        "--mm_projector_type", "mlp2x_gelu",
        "--mm_vision_select_layer", "-2",
        "--mm_use_im_start_end", "False",
        "--mm_use_im_patch_token", "False",
        "--image_aspect_ratio", "pad",
        "--group_by_modality_length", "True",
        "--bf16", "True",
        "--output_dir", paths.output,
        "--num_train_epochs", "1",
        "--per_device_train_batch_size", "16",
        "--per_device_eval_batch_size", "4",
        "--gradient_accumulation_steps", "1",
        "--evaluation_strategy", "no",
        "--save_strategy", "steps",
        "--save_steps", "50000",
        "--save_total_limit", "1",
        "--learning_rate", "2e-4",
        "--weight_decay", "0.",
        "--warmup_ratio", "0.03",
        "--lr_scheduler_type", "cosine",
        "--logging_steps", "1",
        "--tf32", "True",
        "--model_max_length", "2048",
        "--gradient_checkpointing", "True",
        "--dataloader_num_workers", "4",
        "--lazy_preprocess", "True",
        "--report_to", "wandb",
    ]  # fmt: skip


def test_upstream_task_lora_recipe_parses_unchanged(paths, monkeypatch):
    monkeypatch.chdir(REPO_ROOT)
    model_args, data_args, training_args = parse_args(upstream_recipe(paths))
    assert (training_args.lora_enable, training_args.lora_r, training_args.lora_alpha) == (
        True,
        128,
        256,
    )
    assert training_args.mm_projector_lr == 2e-5 and training_args.bits == 16
    assert model_args.version == "v1" and model_args.mm_projector_type == "mlp2x_gelu"
    assert model_args.mm_vision_select_layer == -2 and model_args.mm_use_im_patch_token is False
    assert data_args.image_aspect_ratio == "pad" and data_args.lazy_preprocess is True
    assert training_args.bf16 is True and training_args.model_max_length == 2048
    assert training_args.warmup_steps == 0.03 and training_args.get_warmup_steps(1000) == 30
    assert argument_checks.enum_value(training_args.eval_strategy) == "no"
    assert training_args.group_by_modality_length is True
    assert training_args.activation_checkpointing is True and training_args.use_cpu is True
    assert training_args.hf_deepspeed_config.is_zero3()


def test_upstream_recipe_qlora_variant_parses(paths, monkeypatch):
    monkeypatch.chdir(REPO_ROOT)
    argv = upstream_recipe(paths)
    argv[argv.index("./scripts/zero3.json")] = "./scripts/zero2.json"
    _, _, training_args = parse_args([*argv, "--bits", "4"])
    assert training_args.bits == 4 and training_args.quant_type == "nf4" and training_args.double_quant
    assert not training_args.hf_deepspeed_config.is_zero3()


TRAIN_SCRIPT = re.compile(r"(^|/)llava/train/train(_mem)?\.py$|^llava\.train\.train(_mem)?$")
_DEFAULTED = re.compile(r"\$\{(\w+):?-([^}]*)\}")
_PLAIN = re.compile(r"\$\{(\w+)\}|\$([A-Za-z_]\w*)")
_ASSIGNMENT = re.compile(r"^\s*(?:export\s+)?([A-Za-z_]\w*)=(.*)$")
# Flags whose value must exist on disk: the test puts tmp entries there.
_PATH_FLAGS = {
    "--data_path": "data",
    "--image_folder": "images",
    "--pretrain_mm_mlp_adapter": "projector",
}


def _expand(text: str, variables: dict[str, str], placeholder_dir: Path) -> str:
    text = re.sub(r"\$\([^)]*\)", "x", text)  # command substitution: any word will do
    text = _DEFAULTED.sub(lambda m: variables.get(m.group(1), _expand(m.group(2), variables, placeholder_dir)), text)
    return _PLAIN.sub(
        lambda m: variables.get(m.group(1) or m.group(2), str(placeholder_dir / (m.group(1) or m.group(2)))),
        text,
    )


def train_commands(script: Path, placeholder_dir: Path) -> list[list[str]]:
    """The flags of every train.py / train_mem.py call in a shell script.

    Line continuations are joined, ``NAME=value`` assignments (with ``${NAME:-default}``)
    are followed, and any other ``$VAR`` becomes a path under ``placeholder_dir``.
    """
    text = script.read_text().replace("\\\n", " ")
    variables: dict[str, str] = {}
    commands = []
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        assignment = _ASSIGNMENT.match(line)
        if assignment:
            words = shlex.split(_expand(assignment.group(2), variables, placeholder_dir), comments=True)
            variables[assignment.group(1)] = " ".join(words)
            continue
        tokens = shlex.split(line, comments=True)
        starts = [i for i, token in enumerate(tokens) if TRAIN_SCRIPT.search(token)]
        if starts:
            flags = [_expand(t, variables, placeholder_dir) for t in tokens[starts[0] + 1 :] if t != "$@"]
            commands.append(flags)
    return commands


SHELL_SCRIPTS = sorted((REPO_ROOT / "scripts").rglob("*.sh"))
# The main job builds its command from branches and arrays that no static reading
# follows; tests/scripts/test_finetune_qlora_okvqa.py parses what it runs (DRY_RUN=1).
DYNAMIC_SCRIPTS = {"finetune_qlora_okvqa.sh"}
TRAINING_SCRIPTS = [
    s
    for s in SHELL_SCRIPTS
    if re.search(r"llava[/.]train[/.]train(_mem)?\b", s.read_text()) and s.name not in DYNAMIC_SCRIPTS
]


def test_the_task_scripts_are_found():
    names = {script.relative_to(REPO_ROOT).as_posix() for script in TRAINING_SCRIPTS}
    assert {"scripts/v1_5/finetune_task_lora.sh", "scripts/v1_5/finetune_task_qlora.sh"} <= names


@pytest.mark.parametrize("script", TRAINING_SCRIPTS, ids=lambda s: s.relative_to(REPO_ROOT).as_posix())
def test_every_training_script_parses(script, paths, tmp_path, monkeypatch):
    monkeypatch.chdir(REPO_ROOT)
    commands = train_commands(script, tmp_path / "placeholders")
    assert commands, f"no train.py / train_mem.py call found in {script}"
    for flags in commands:
        for index, flag in enumerate(flags[:-1]):
            if flag in _PATH_FLAGS:
                flags[index + 1] = getattr(paths, _PATH_FLAGS[flag])
        parse_args(flags)  # raises ArgumentError naming any unknown flag or bad combination


def test_task_scripts_pass_overrides_and_extra_flags(tmp_path):
    """Run both scripts with a stand-in `deepspeed` that records its command line."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "argv.txt"
    launcher = bin_dir / "deepspeed"
    launcher.write_text(f'#!/usr/bin/env bash\nprintf "%s\\n" "$@" > {shlex.quote(str(record))}\n')
    launcher.chmod(0o755)
    for name, config in (
        ("finetune_task_lora.sh", "zero3.json"),
        ("finetune_task_qlora.sh", "zero2.json"),
    ):
        env = {
            **os.environ,
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "DATA_PATH": "my/data.json",
            "OUTPUT_DIR": "checkpoints/llava-x-lora",
            "DEEPSPEED_LAUNCH_ARGS": "--num_gpus 2",
        }
        subprocess.run(
            ["bash", f"scripts/v1_5/{name}", "--num_train_epochs", "3"],
            cwd=REPO_ROOT,
            env=env,
            check=True,
        )
        argv = record.read_text().splitlines()
        assert argv[:3] == ["--num_gpus", "2", "llava/train/train_mem.py"]
        assert argv[argv.index("--data_path") + 1] == "my/data.json"
        assert argv[argv.index("--image_folder") + 1] == "./playground/data"
        assert argv[argv.index("--output_dir") + 1] == "checkpoints/llava-x-lora"
        assert argv[argv.index("--deepspeed") + 1] == f"./scripts/{config}"
        assert argv[-2:] == ["--num_train_epochs", "3"]
    # Without overrides the output folder keeps "llava" and "lora" in its name.
    subprocess.run(
        ["bash", "scripts/v1_5/finetune_task_lora.sh"],
        cwd=REPO_ROOT,
        env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"},
        check=True,
    )
    argv = record.read_text().splitlines()
    assert argv[0] == "llava/train/train_mem.py"
    assert argv[argv.index("--output_dir") + 1] == "./checkpoints/llava-v1.5-7b-task-lora"


def test_real_templates_know_script_versions(tmp_path, monkeypatch):
    """The real llava.conversation (once it exists) knows every --version the scripts use."""
    monkeypatch.delitem(sys.modules, "llava.conversation")
    try:
        from llava.conversation import conv_templates
    except ModuleNotFoundError as error:
        if error.name != "llava.conversation":
            raise
        pytest.skip("llava/conversation.py is not in this checkout yet")
    versions = {"v0"}  # ModelArguments' default
    for script in TRAINING_SCRIPTS:
        for flags in train_commands(script, tmp_path):
            if "--version" in flags:
                versions.add(flags[flags.index("--version") + 1])
    assert versions <= set(conv_templates)
