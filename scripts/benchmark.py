"""Training throughput of the real training path on a model preset.

Runs ``llava.train.train.train()`` (the same code as ``train_mem.py``) for a
fixed number of steps on generated data and reports the median step time,
samples/s, tokens/s (image tokens counted) and peak memory; writes JSON.

    python scripts/benchmark.py --steps 20                                  # plain, CPU
    python scripts/benchmark.py --steps 20 --bits 4 --bf16                  # QLoRA
    deepspeed --num_gpus 1 scripts/benchmark.py --deepspeed scripts/zero2.json
    OMP_NUM_THREADS=1 deepspeed --num_gpus 2 scripts/benchmark.py --deepspeed scripts/zero2.json
    python scripts/benchmark.py --preset llava-v1.5-7b --bits 4 --bf16 --batch-size 16   # GPU

Each process builds the (deterministic) model and data in its own temporary
folder, so nothing needs to exist beforehand.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def parse(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="tiny", help="model preset of llava.model.tiny (default: tiny)")
    parser.add_argument("--steps", type=int, default=20, help="optimizer steps to time (default: 20)")
    parser.add_argument("--warmup-steps", type=int, default=3, help="first steps left out of the median")
    parser.add_argument("--batch-size", type=int, default=4, help="per-device batch size (default: 4)")
    parser.add_argument("--bits", type=int, default=16, choices=(4, 8, 16))
    parser.add_argument("--bf16", action="store_true", help="bf16 mixed precision")
    parser.add_argument("--lora-r", type=int, default=8, help="LoRA rank (128 for the 7B recipe)")
    parser.add_argument("--deepspeed", default=None, help="DeepSpeed config (run under the deepspeed launcher)")
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--json", default=None, help="write the result here")
    parser.add_argument("--local_rank", type=int, default=-1, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    import torch
    from transformers import TrainerCallback

    from llava.data.synthetic import write_llava_vqa
    from llava.model.tiny import build_tiny_llava
    from llava.train.train import train

    args = parse(argv)

    class StepTimer(TrainerCallback):
        def __init__(self):
            self.times: list[float] = []
            self._start = 0.0

        def on_step_begin(self, *_, **__):
            self._start = time.perf_counter()

        def on_step_end(self, *_, **__):
            self.times.append(time.perf_counter() - self._start)

    work = Path(tempfile.mkdtemp(prefix="llava-bench-"))
    model_dir = build_tiny_llava(work / "llava-bench", preset=args.preset)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    samples_needed = (args.steps + args.warmup_steps) * args.batch_size * world
    data_dir = write_llava_vqa(work / "data", count=samples_needed, text_only=0)
    flags = [
        "--model_name_or_path", str(model_dir), "--version", "v1",
        "--data_path", str(data_dir / "train.json"), "--image_folder", str(data_dir / "images"),
        "--vision_tower", str(model_dir / "clip-vision-tower"), "--mm_projector_type", "mlp2x_gelu",
        "--mm_vision_select_layer", "-2", "--mm_use_im_start_end", "False", "--mm_use_im_patch_token", "False",
        "--image_aspect_ratio", "pad", "--lora_enable", "True", "--lora_r", str(args.lora_r),
        "--lora_alpha", str(2 * args.lora_r), "--mm_projector_lr", "2e-5", "--bits", str(args.bits),
        "--bf16", str(args.bf16), "--output_dir", str(work / "out"), "--num_train_epochs", "1",
        "--max_steps", str(args.steps + args.warmup_steps), "--per_device_train_batch_size", str(args.batch_size),
        "--learning_rate", "2e-4", "--save_strategy", "no", "--logging_steps", "1000", "--report_to", "none",
        "--dataloader_num_workers", "0", "--gradient_checkpointing", str(args.gradient_checkpointing),
        "--model_max_length", "2048" if args.preset != "tiny" else "512",
    ]
    if args.deepspeed:
        flags += ["--deepspeed", args.deepspeed]
    if args.local_rank >= 0:
        flags += ["--local_rank", str(args.local_rank)]

    timer = StepTimer()
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    trainer = train(argv=flags, callbacks=[timer])
    timed = timer.times[args.warmup_steps :]
    median = statistics.median(timed)

    dataset = trainer.train_dataset
    image_tokens = trainer.model.get_vision_tower().num_image_tokens if hasattr(trainer.model, "get_vision_tower") else 0
    sample = dataset[0]
    tokens_per_sample = int(sample["input_ids"].numel()) - 1 + image_tokens
    samples_per_step = args.batch_size * world
    result = {
        "preset": args.preset, "bits": args.bits, "bf16": args.bf16, "deepspeed": args.deepspeed,
        "processes": world, "batch_size_per_device": args.batch_size, "steps_timed": len(timed),
        "median_step_s": median, "samples_per_s": samples_per_step / median,
        "tokens_per_s": samples_per_step * tokens_per_sample / median,
        "tokens_per_sample": tokens_per_sample,
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU ({os.cpu_count()} cores)",
        "peak_memory_gib": (torch.cuda.max_memory_allocated() / 2**30) if torch.cuda.is_available() else None,
        "torch_threads": torch.get_num_threads(),
    }
    if trainer.args.process_index == 0:
        print(f"| {'setting':<38} | median step | samples/s | tokens/s |")
        name = f"{args.preset} bits={args.bits} ds={Path(args.deepspeed).name if args.deepspeed else '-'} x{world}"
        print(f"| {name:<38} | {median * 1000:8.1f} ms | {result['samples_per_s']:9.1f} | {result['tokens_per_s']:8.0f} |")
        if args.json:
            Path(args.json).write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
