"""The main job, scripts/finetune_qlora_okvqa.sh: its flags parse, missing inputs are named,
and the CPU demo runs end to end (converter, DeepSpeed 4-bit QLoRA, evaluation, answering, score)."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest
from offline import assert_stayed_offline, offline_env

from llava.train.arguments import parse_args

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "finetune_qlora_okvqa.sh"


def run_script(env_overrides: dict, *args: str, check: bool = True, timeout: int = 900, sockets: Path | None = None):
    """The main script as on a node without network: every Python process it starts runs under the socket guard."""
    base = {**os.environ, "WANDB_MODE": "disabled", **env_overrides}
    env = offline_env(sockets, base) if sockets is not None else base
    return subprocess.run(
        ["bash", str(SCRIPT), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=check
    )


# The only warning the demo may print: DeepSpeed's runner says it found no hostfile (one node
# is the point of the demo, and the runner has no flag that silences it).
ALLOWED_WARNINGS = ("Unable to find hostfile, will proceed with training with local resources only",)


def assert_quiet(output: str) -> None:
    """No warning, deprecation or FutureWarning line beyond :data:`ALLOWED_WARNINGS`."""
    noisy = [
        line
        for line in output.splitlines()
        if re.search(r"warning|deprecated", line, re.IGNORECASE) and not any(ok in line for ok in ALLOWED_WARNINGS)
    ]
    assert not noisy, "\n".join(noisy[:20])


def train_flags(dry_run_output: str) -> list[str]:
    lines = [line for line in dry_run_output.splitlines() if "llava/train/train_mem.py" in line]
    assert len(lines) == 1, dry_run_output
    words = shlex.split(lines[0])
    return words[words.index("llava/train/train_mem.py") + 1 :]


def parse_with_real_files(flags: list[str], tmp_path: Path):
    """parse_args checks that data files exist: point the data flags at real temporary files."""
    (tmp_path / "images").mkdir(exist_ok=True)
    for flag, name in (("--data_path", "train.json"), ("--validation_data_path", "val_subset.json")):
        (tmp_path / name).write_text("[]")
        flags[flags.index(flag) + 1] = str(tmp_path / name)
    flags[flags.index("--image_folder") + 1] = str(tmp_path / "images")
    for flag in ("--model_name_or_path", "--vision_tower"):  # the demo's tiny model, not built in a dry run
        folder = Path(flags[flags.index(flag) + 1])
        if folder.is_absolute():
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "config.json").write_text("{}")
    return parse_args(flags)


def test_gpu_recipe_flags_parse_into_the_dataclasses(tmp_path):
    result = run_script(
        {"MODE": "gpu", "DRY_RUN": "1", "NUM_GPUS": "8", "DATA_DIR": str(tmp_path / "okvqa")}, "--save_total_limit", "1"
    )
    flags = train_flags(result.stdout)
    assert flags[-2:] == ["--save_total_limit", "1"]  # extra arguments pass through, last
    model_args, data_args, training_args = parse_with_real_files(flags, tmp_path)
    assert model_args.model_name_or_path == "liuhaotian/llava-v1.5-7b" and model_args.version == "v1"
    assert model_args.vision_tower == "openai/clip-vit-large-patch14-336"
    assert model_args.mm_projector_type == "mlp2x_gelu" and model_args.mm_vision_select_layer == -2
    assert training_args.bits == 4 and training_args.lora_r == 128 and training_args.lora_alpha == 256
    assert training_args.mm_projector_lr == 2e-5 and training_args.learning_rate == 2e-4
    assert training_args.num_train_epochs == 3 and training_args.model_max_length == 2048
    assert training_args.bf16 and training_args.group_by_modality_length
    assert training_args.activation_checkpointing_auto  # decided once the model is loaded
    assert training_args.metric_for_best_model == "vqa_accuracy" and training_args.load_best_model_at_end
    assert data_args.image_aspect_ratio == "pad"
    assert "llava" in training_args.output_dir and "lora" in training_args.output_dir
    assert flags[flags.index("--deepspeed") + 1] == "scripts/zero2.json"
    assert "--num_gpus 8" in result.stdout


def test_demo_flags_parse(tmp_path):
    result = run_script({"MODE": "demo", "DRY_RUN": "1", "DEMO_DIR": str(tmp_path / "demo")})
    assert "No CUDA device: running the embedded CPU demo" in result.stdout
    assert "python -m llava.model.tiny" in result.stdout.replace(".venv/bin/", "")
    _, _, training_args = parse_with_real_files(train_flags(result.stdout), tmp_path)
    assert training_args.bits == 4 and training_args.use_cpu


def test_every_setting_is_an_environment_variable(tmp_path):
    result = run_script(
        {
            "MODE": "gpu",
            "DRY_RUN": "1",
            "DATA_DIR": str(tmp_path / "d"),
            "EPOCHS": "1",
            "LORA_R": "64",
            "OUTPUT_DIR": "checkpoints/llava-x-lora",
            "BATCH_SIZE": "4",
            "MODEL_NAME_OR_PATH": "/models/llava",
            "REPORT_TO": "none",
        }
    )
    flags = train_flags(result.stdout)
    for flag, value in (
        ("--num_train_epochs", "1"),
        ("--lora_r", "64"),
        ("--output_dir", "checkpoints/llava-x-lora"),
        ("--per_device_train_batch_size", "4"),
        ("--model_name_or_path", "/models/llava"),
        ("--report_to", "none"),
    ):
        assert flags[flags.index(flag) + 1] == value, flag


def test_gpu_mode_without_data_names_what_is_missing(tmp_path):
    result = run_script(
        {
            "MODE": "gpu",
            "OKVQA_DIR": str(tmp_path / "raw"),
            "COCO_DIR": str(tmp_path / "coco"),
            "DATA_DIR": str(tmp_path / "okvqa"),
        },
        check=False,
    )
    assert result.returncode == 2
    assert "OpenEnded_mscoco_train2014_questions.json" in result.stderr
    assert f"{tmp_path / 'coco'}/val2014/" in result.stderr
    assert "docs/OKVQA.md" in result.stderr


@pytest.mark.slow
def test_cpu_demo_end_to_end(tmp_path):
    output = tmp_path / "llava-tiny-okvqa-qlora"
    result = run_script(
        {
            "MODE": "demo",
            "DEMO_DIR": str(tmp_path / "demo"),
            "OUTPUT_DIR": str(output),
            "EPOCHS": "2",
            "DEMO_TRAIN_SIZE": "64",
            "DEMO_VAL_SIZE": "24",
            "VAL_SUBSET": "12",
            "OMP_NUM_THREADS": "1",
        },
        check=False,
        sockets=tmp_path / "sockets.log",
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    assert_stayed_offline(tmp_path / "sockets.log")  # the DeepSpeed launcher, its workers, answering, scoring
    assert_quiet(result.stdout + result.stderr)
    assert "--gradient_checkpointing auto: off (activations about" in result.stdout + result.stderr
    assert "OK-VQA scores for" in result.stdout and "VQA accuracy" in result.stdout
    score = json.loads((output / "eval" / "okvqa_val_score.json").read_text())
    assert score["count"] == 24 and 0 <= score["vqa_accuracy"] <= 100
    history = json.loads((output / "eval" / "history.json").read_text())
    assert len(history) == 2
    assert (output / "eval" / "curves.png").exists()
    assert {"adapter_model.safetensors", "non_lora_trainables.bin", "config.json"} <= {p.name for p in output.iterdir()}
    answers = (output / "eval" / "okvqa_val_answers.jsonl").read_text().splitlines()
    assert len(answers) == 24
    _the_run_knows_its_data(output, tmp_path / "demo")


def _the_run_knows_its_data(output: Path, demo: Path) -> None:
    """eval/run.json and the config record data, folders and template; the readers use them."""
    from llava.eval import eval_okvqa
    from llava.run_record import file_sha256
    from llava.serve.eval_browser import load_run

    run = json.loads((output / "eval" / "run.json").read_text())
    data = (demo / "okvqa").resolve()
    assert run["data_path"] == str(data / "train.json") and run["data_sha256"] == file_sha256(data / "train.json")
    assert run["validation_data_path"] == str(data / "val_subset.json") and run["conv_mode"] == "vicuna_v1"
    config = json.loads((output / "config.json").read_text())
    assert config["llava_run"] == run and Path(config["llava_base"]["name"]).is_absolute()
    # the browser finds the pictures without --image-folder
    browsed = load_run(output)
    records = [record for evaluation in browsed.evaluations for record in evaluation.records]
    assert records and all(browsed.image_path(record["image"]).is_file() for record in records)
    # docs/EVALUATION.md's re-scoring command, as written: the epoch file covers the run's subset
    scores = eval_okvqa.main(
        ["--answers", str(output / "eval" / "epoch_2.jsonl"), "--annotations", str(data / "val_annotations.json")]
    )
    assert scores["count"] == scores["annotated"] == 12


@pytest.mark.parametrize(
    ("dataset", "converter", "scorer"),
    [
        ("aokvqa", "python -m llava.data.aokvqa --aokvqa-dir", "llava.eval.eval_"),
        ("custom", "python -m llava.data.vqa --input", "llava.eval.eval_okvqa"),
    ],
)
def test_demo_takes_each_dataset(tmp_path, dataset, converter, scorer):
    result = run_script({"MODE": "demo", "DRY_RUN": "1", "DEMO_DIR": str(tmp_path / "demo"), "DATASET": dataset})
    printed = result.stdout.replace(".venv/bin/", "")
    assert f"llava.data.synthetic --layout {'csv' if dataset == 'custom' else dataset}" in printed
    assert converter in printed and f"--out {tmp_path / 'demo' / dataset}" in printed
    flags = train_flags(result.stdout)
    assert flags[flags.index("--data_path") + 1] == str(tmp_path / "demo" / dataset / "train.json")
    assert f"eval/{dataset}_val_answers.jsonl" in printed and scorer in printed
    parse_with_real_files(flags, tmp_path)


def test_custom_data_dir_is_used_as_converted(tmp_path):
    data = tmp_path / "my_vqa"
    data.mkdir()
    for name in ("train.json", "val_subset.json"):
        (data / name).write_text("[]")
    (data / "summary.json").write_text(json.dumps({"image_folder": str(tmp_path / "pictures")}))
    result = run_script({"MODE": "gpu", "DRY_RUN": "1", "DATASET": "custom", "DATA_DIR": str(data)})
    flags = train_flags(result.stdout)
    assert flags[flags.index("--image_folder") + 1] == str(tmp_path / "pictures")
    assert "llava.data" not in result.stdout  # nothing converted
    assert f"--annotations {data / 'val_annotations.json'}" in result.stdout
    assert "checkpoints/llava-v1.5-7b-custom-qlora" in result.stdout


def test_the_demo_reuses_converted_custom_data(tmp_path):
    data = tmp_path / "my_vqa"
    data.mkdir()
    for name in ("train.json", "val_subset.json"):
        (data / name).write_text("[]")
    (data / "summary.json").write_text(json.dumps({"image_folder": str(tmp_path / "pictures")}))
    result = run_script(
        {"MODE": "demo", "DRY_RUN": "1", "DATASET": "custom", "DATA_DIR": str(data), "DEMO_DIR": str(tmp_path / "d")}
    )
    assert "llava.data.synthetic" not in result.stdout and "llava.data.vqa" not in result.stdout


def test_custom_without_converted_data_says_how_to_convert(tmp_path):
    result = run_script({"MODE": "gpu", "DATASET": "custom", "DATA_DIR": str(tmp_path / "none")}, check=False)
    assert result.returncode == 2
    assert "python -m llava.data.vqa --input my_vqa.csv" in result.stderr and "CUSTOM_DATA.md" in result.stderr
    result = run_script({"MODE": "gpu", "DATASET": "vqav2"}, check=False)
    assert result.returncode == 2 and "DATASET must be okvqa, aokvqa or custom" in result.stderr


@pytest.mark.slow
def test_cpu_demo_on_custom_csv_data_end_to_end(tmp_path):
    """DATASET=custom: synthetic CSV -> llava.data.vqa -> QLoRA -> answers -> score."""
    output = tmp_path / "llava-tiny-custom-qlora"
    result = run_script(
        {
            "MODE": "demo",
            "DATASET": "custom",
            "DEMO_DIR": str(tmp_path / "demo"),
            "OUTPUT_DIR": str(output),
            "EPOCHS": "1",
            "DEMO_TRAIN_SIZE": "64",
            "DEMO_VAL_SIZE": "24",
            "VAL_SUBSET": "12",
            "OMP_NUM_THREADS": "1",
        },
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    summary = json.loads((tmp_path / "demo" / "custom" / "summary.json").read_text())
    assert summary["image_folder"] == str((tmp_path / "demo" / "raw_csv" / "csv").resolve())
    score = json.loads((output / "eval" / "custom_val_score.json").read_text())
    assert score["count"] == summary["splits"]["val"]["questions"] == 22
    assert 0 <= score["vqa_accuracy"] <= 100


def test_master_port_is_free_unless_set(tmp_path):
    env = {"MODE": "gpu", "DRY_RUN": "1", "DATA_DIR": str(tmp_path / "d")}
    first = train_flags_line(run_script(env).stdout)
    assert "--master_port" in first and first[first.index("--master_port") + 1] != "29500"
    chosen = train_flags_line(run_script({**env, "MASTER_PORT": "23456"}).stdout)
    assert chosen[chosen.index("--master_port") + 1] == "23456"


def train_flags_line(dry_run_output: str) -> list[str]:
    line = next(line for line in dry_run_output.splitlines() if "llava/train/train_mem.py" in line)
    return shlex.split(line)


FAKE_DEEPSPEED = """#!/usr/bin/env bash
# A stand-in for the deepspeed runner: runner -> launcher -> worker, none passing signals on.
echo "$*" > "$MARK/args"
bash -c '"$PYTHON" "$MARK/worker.py" & wait' &
wait
"""
FAKE_WORKER = """import os, signal, sys, time
mark = os.environ["MARK"]
def stop(number, frame):
    time.sleep(0.5)  # "finish the step and save"
    open(os.path.join(mark, "worker-got-" + signal.Signals(number).name), "w").close()
    sys.exit(75)
signal.signal(signal.SIGTERM, stop)
open(os.path.join(mark, "ready"), "w").close()
time.sleep(120)
"""


def test_sigterm_to_the_script_reaches_the_workers_and_exits_75(tmp_path):
    import signal
    import sys
    import time

    mark = tmp_path / "mark"
    mark.mkdir()
    (mark / "worker.py").write_text(FAKE_WORKER)
    fake = tmp_path / "deepspeed"
    fake.write_text(FAKE_DEEPSPEED)
    fake.chmod(0o755)
    data = tmp_path / "okvqa"
    data.mkdir()
    for name in ("train.json", "val_subset.json"):
        (data / name).write_text("[]")
    (data / "summary.json").write_text(json.dumps({"image_folder": str(tmp_path)}))
    env = {
        **os.environ,
        "WANDB_MODE": "disabled",
        "MODE": "gpu",
        "DATA_DIR": str(data),
        "DEEPSPEED": str(fake),
        "MARK": str(mark),
        "PYTHON": sys.executable,
        "OUTPUT_DIR": str(tmp_path / "out"),
    }
    script = subprocess.Popen(
        ["bash", str(SCRIPT)], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 120
        while not (mark / "ready").exists():
            assert script.poll() is None and time.monotonic() < deadline, script.communicate()
            time.sleep(0.1)
        script.send_signal(signal.SIGTERM)  # the script alone, as a scheduler does
        stdout, stderr = script.communicate(timeout=60)
    finally:
        if script.poll() is None:
            script.kill()
    assert script.returncode == 75, stderr
    assert (mark / "worker-got-SIGTERM").exists()  # the grandchild got it
    assert "run the same command to resume" in stderr
    assert "--master_port" in (mark / "args").read_text()
