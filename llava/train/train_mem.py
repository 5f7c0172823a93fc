"""Upstream's memory-efficient entry point: ``deepspeed llava/train/train_mem.py ...``.

Asks for FlashAttention-2; where flash-attn or CUDA is missing it falls back to
PyTorch SDPA with one log line (upstream fails instead).
"""

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from llava.train.train import train  # noqa: E402

if __name__ == "__main__":
    from llava.train.guards import run_main

    run_main(train, attn_implementation="flash_attention_2")
