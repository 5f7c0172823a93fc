"""Test helper: one short, real LoRA fine-tune of the tiny LLaVA, for tests that need a run's output.

``train_tiny_lora(tmp_dir, model_dir, data_dir)`` launches ``python -m
llava.train.train`` in a subprocess (as users launch it) with upstream's
task-LoRA flags scaled down: 6 optimizer steps at a learning rate high enough
that the projector and the LoRA weights clearly move (about 10-15 s on 2 CPU
cores). It returns the output folder, which holds upstream's LoRA layout:
``config.json``, ``adapter_config.json``, ``adapter_model.safetensors`` and
``non_lora_trainables.bin``.

A plain function, not a fixture: test modules wrap it in their own
session-scoped fixture. Runs are memoised per (model, data, steps) within the
test session, so every module that asks gets the same (read-only) folder and
training happens once. ``prompt_inputs`` builds one image + question sample
the way evaluation does, for comparing models' logits.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from offline import assert_stayed_offline, offline_env

ROOT = Path(__file__).resolve().parents[1]
RUN_NAME = "llava-tiny-task-lora"  # upstream's naming rule: "llava" + "lora" marks a LoRA run
QUESTION = "What colour is the shape?"

_runs: dict[tuple[str, str, int], Path] = {}


def recipe_flags(model_dir: Path, data_dir: Path, output_dir: Path, epochs: int = 3, **overrides: str) -> list[str]:
    """Upstream's task-LoRA flags, scaled down to the tiny model; ``overrides`` replace flag values."""
    flags = {
        "lora_enable": "True",
        "lora_r": "8",
        "lora_alpha": "16",
        "mm_projector_lr": "2e-3",
        "model_name_or_path": str(model_dir),
        "version": "v1",
        "data_path": str(data_dir / "train.json"),
        "image_folder": str(data_dir / "images"),
        "vision_tower": str(model_dir / "clip-vision-tower"),
        "mm_projector_type": "mlp2x_gelu",
        "mm_vision_select_layer": "-2",
        "mm_use_im_start_end": "False",
        "mm_use_im_patch_token": "False",
        "image_aspect_ratio": "pad",
        "group_by_modality_length": "True",
        "output_dir": str(output_dir),
        "num_train_epochs": str(epochs),
        "per_device_train_batch_size": "4",
        "gradient_accumulation_steps": "1",
        "save_strategy": "no",
        "learning_rate": "2e-3",
        "weight_decay": "0.",
        "warmup_ratio": "0.03",
        "lr_scheduler_type": "cosine",
        "logging_steps": "1",
        "model_max_length": "512",
        "gradient_checkpointing": "True",
        "dataloader_num_workers": "0",
        "lazy_preprocess": "True",
        "report_to": "none",
        "seed": "0",
    }
    flags.update(overrides)
    return [word for name, value in flags.items() for word in (f"--{name}", value)]


def tiny_lora_flags(model_dir: Path, data_dir: Path, output_dir: Path, max_steps: int = 6) -> list[str]:
    """The recipe for a few steps at learning rates high enough that projector and LoRA clearly move."""
    return recipe_flags(
        model_dir,
        data_dir,
        output_dir,
        epochs=1,
        max_steps=str(max_steps),
        mm_projector_lr="1e-2",
        learning_rate="1e-2",
        warmup_ratio="0.0",
        lr_scheduler_type="constant",
        gradient_checkpointing="False",
    )


def train_tiny_lora(
    tmp_dir: str | os.PathLike,
    model_dir: str | os.PathLike,
    data_dir: str | os.PathLike,
    max_steps: int = 6,
    timeout: int = 600,
) -> Path:
    """Fine-tune ``model_dir`` with LoRA on ``data_dir`` (LLaVA format) and return the run's folder.

    The folder is ``tmp_dir/llava-tiny-task-lora`` of the first call for these
    inputs (later calls return it; treat it as read-only). Raises
    ``AssertionError`` with the run's log tail when training fails or the
    expected files are missing.
    """
    key = (str(Path(model_dir).resolve()), str(Path(data_dir).resolve()), max_steps)
    if key in _runs and (_runs[key] / "adapter_config.json").exists():
        return _runs[key]
    output = Path(tmp_dir) / RUN_NAME
    command = [
        sys.executable,
        "-m",
        "llava.train.train",
        *tiny_lora_flags(Path(model_dir), Path(data_dir), output, max_steps),
    ]
    sockets = Path(tmp_dir) / "sockets.log"  # training runs as on a node without network
    env = offline_env(
        sockets, dict(os.environ, OMP_NUM_THREADS="1", WANDB_MODE="disabled", TOKENIZERS_PARALLELISM="false")
    )
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise AssertionError(f"tiny LoRA run failed:\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}")
    assert_stayed_offline(sockets)
    expected = ["config.json", "adapter_config.json", "adapter_model.safetensors", "non_lora_trainables.bin"]
    missing = [name for name in expected if not (output / name).exists()]
    if missing:
        raise AssertionError(f"tiny LoRA run did not write {missing} in {output}")
    _runs[key] = output
    return output


def prompt_inputs(tokenizer, image_processor, model_config, question: str = QUESTION, conv_mode: str = "vicuna_v1"):
    """``(input_ids [1, L] with an IMAGE_TOKEN_INDEX, pixel_values, PIL image)`` for one sample.

    The image is a red circle on a 40x24 canvas (not square, so ``pad`` matters);
    the prompt is upstream's ``<image>\\n`` + question in ``conv_mode``.
    """
    from llava.conversation import conv_templates
    from llava.data.synthetic import draw
    from llava.mm_utils import process_images, tokenizer_image_token

    image = draw("red", "circle", size=(40, 24))
    conv = conv_templates[conv_mode].copy()
    conv.append_message(conv.roles[0], "<image>\n" + question)
    conv.append_message(conv.roles[1], None)
    input_ids = tokenizer_image_token(conv.get_prompt(), tokenizer, return_tensors="pt").unsqueeze(0)
    pixel_values = process_images([image], image_processor, model_config)
    return input_ids, pixel_values, image
