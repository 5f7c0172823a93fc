"""How tests launch real training runs: upstream's flags on the tiny model, as subprocesses.

Single process: ``python -m llava.train.train ...``; several: ``deepspeed --num_gpus N``
over gloo on the CPU. ``OMP_NUM_THREADS=1`` keeps two processes from fighting over
two cores; W&B is disabled.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HELPER = Path(__file__).with_name("fingerprint_train.py")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def recipe_flags(model_dir: Path, data_dir: Path, output_dir: Path, epochs: int = 3) -> list[str]:
    """Upstream's task-LoRA flags, scaled down to the tiny model."""
    return [
        "--lora_enable", "True", "--lora_r", "8", "--lora_alpha", "16", "--mm_projector_lr", "2e-3",
        "--model_name_or_path", str(model_dir), "--version", "v1",
        "--data_path", str(data_dir / "train.json"), "--image_folder", str(data_dir / "images"),
        "--vision_tower", str(model_dir / "clip-vision-tower"),
        "--mm_projector_type", "mlp2x_gelu", "--mm_vision_select_layer", "-2",
        "--mm_use_im_start_end", "False", "--mm_use_im_patch_token", "False",
        "--image_aspect_ratio", "pad", "--group_by_modality_length", "True",
        "--output_dir", str(output_dir), "--num_train_epochs", str(epochs),
        "--per_device_train_batch_size", "4", "--gradient_accumulation_steps", "1",
        "--save_strategy", "no", "--learning_rate", "2e-3", "--weight_decay", "0.",
        "--warmup_ratio", "0.03", "--lr_scheduler_type", "cosine", "--logging_steps", "1",
        "--model_max_length", "512", "--gradient_checkpointing", "True",
        "--dataloader_num_workers", "0", "--lazy_preprocess", "True", "--report_to", "none",
        "--seed", "0",
    ]


def run(command: list[str], timeout: int = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", WANDB_MODE="disabled", TOKENIZERS_PARALLELISM="false")
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(command[:6])} ... failed:\n{result.stdout[-4000:]}\n{result.stderr[-6000:]}")
    return result


def deepspeed_command(processes: int, config: str) -> list[str]:
    launcher = shutil.which("deepspeed") or str(Path(sys.executable).with_name("deepspeed"))
    return [launcher, "--num_gpus", str(processes), "--master_port", str(_free_port()), str(HELPER),
            "--deepspeed", str(ROOT / "scripts" / config)]
