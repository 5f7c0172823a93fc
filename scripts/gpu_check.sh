#!/usr/bin/env bash
# One short GPU check for a lent GPU machine (about 10 minutes on one H100/H200): the
# flash-attn seam, 4-bit QLoRA and ZeRO-2 on the 7B-shaped preset, and the figures
# docs/PERFORMANCE.md asks for. Prints a table per step and leaves JSON in $OUT (or ./gpu-check).
#
#   bash scripts/gpu_check.sh            # needs CUDA; installs nothing if .venv has torch+CUDA
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT="${OUT:-gpu-check}"; mkdir -p "$OUT"
PYTHON="${PYTHON:-python3}"
export WANDB_MODE=disabled PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
"$PYTHON" -c 'import torch, importlib.util as u; print("torch", torch.__version__, "cuda", torch.version.cuda, "flash_attn", bool(u.find_spec("flash_attn")))'
# 1. The GPU tests (flash-attn against SDPA on the tiny model).
"$PYTHON" -m pytest -q -m gpu tests || true
# 2. QLoRA training step, 7B shapes, r 128, batch 16, ZeRO-2, bf16 (median step, tokens/s, MFU, peak memory).
deepspeed --num_gpus 1 scripts/benchmark.py --preset llava-v1.5-7b --bits 4 --bf16 --lora-r 128 \
    --batch-size 16 --steps 10 --gradient-checkpointing --deepspeed scripts/zero2.json --json "$OUT/train_qlora_7b.json"
# 3. Evaluation throughput, 7B shapes, batch 32 (goal: 5,046 questions in under 3 minutes).
"$PYTHON" scripts/benchmark.py --mode eval --preset llava-v1.5-7b --eval-batch-sizes 1 32 --questions 256 \
    --json "$OUT/eval_7b.json"
