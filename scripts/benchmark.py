"""Benchmarks: training throughput, evaluation throughput, checkpoint cost.

``--mode train`` (default) runs ``llava.train.train.train()`` (the same code as
``train_mem.py``) for a fixed number of steps on generated data and reports the
median step time, samples/s, tokens/s (image tokens counted), peak memory and,
on a GPU, MFU; ``--mode eval`` measures batched greedy answering (questions/s)
at each ``--eval-batch-sizes``; ``--mode checkpoint`` times saving and loading
a LoRA run and reports the on-disk size of a QLoRA checkpoint for the preset.
Every mode prints a table and, with ``--json``, writes the numbers.

    python scripts/benchmark.py --steps 20                                  # plain LoRA, CPU
    python scripts/benchmark.py --steps 20 --bits 4 --bf16                  # QLoRA
    deepspeed --num_gpus 1 scripts/benchmark.py --deepspeed scripts/zero2.json
    OMP_NUM_THREADS=1 deepspeed --num_gpus 2 scripts/benchmark.py --deepspeed scripts/zero2.json
    python scripts/benchmark.py --mode eval --eval-batch-sizes 1 16
    python scripts/benchmark.py --mode checkpoint --preset llava-v1.5-7b --lora-r 128
    python scripts/benchmark.py --preset llava-v1.5-7b --bits 4 --bf16 --batch-size 16 --lora-r 128   # GPU
    python scripts/benchmark.py --mode eval --preset llava-v1.5-7b --eval-batch-sizes 32 --questions 256  # GPU

Each process builds the (deterministic) model and data in its own temporary
folder, so nothing needs to exist beforehand.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def parse(argv=None) -> argparse.Namespace:
    from llava.entry import HelpFormatter
    from llava.flags import Parser

    parser = Parser(formatter_class=HelpFormatter, description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="tiny", help="model preset of llava.model.tiny (default: tiny)")
    parser.add_argument("--steps", type=int, default=20, help="optimizer steps to time (default: 20)")
    parser.add_argument("--warmup-steps", type=int, default=3, help="first steps left out of the median")
    parser.add_argument("--batch-size", type=int, default=4, help="per-device batch size (default: 4)")
    parser.add_argument("--bits", type=int, default=16, choices=(4, 8, 16))
    parser.add_argument("--bf16", action="store_true", help="bf16 mixed precision")
    parser.add_argument("--lora-r", type=int, default=8, help="LoRA rank (128 for the 7B recipe)")
    parser.add_argument("--deepspeed", default=None, help="DeepSpeed config (run under the deepspeed launcher)")
    parser.add_argument(
        "--gradient-checkpointing",
        nargs="?",
        const="True",
        default="False",
        choices=("True", "False", "auto"),
        help="checkpoint activations: True (bare flag), False, or auto (decided from free memory)",
    )
    parser.add_argument(
        "--phase-steps",
        type=int,
        default=3,
        help="extra steps after the timed ones, split into phases (synchronised at each boundary; 0: none)",
    )
    parser.add_argument("--json", default=None, help="write the result here")
    parser.add_argument(
        "--train-args",
        default="",
        help="more training flags for train(), as one shell-quoted string (e.g. '--use_liger False')",
    )
    parser.add_argument("--mode", default="train", choices=("train", "eval", "checkpoint"))
    parser.add_argument("--eval-batch-sizes", type=int, nargs="+", default=[1, 16], help="eval mode batch sizes")
    parser.add_argument("--questions", type=int, default=64, help="eval mode: questions per batch size")
    parser.add_argument("--max-new-tokens", type=int, default=16, help="eval mode: tokens per answer")
    parser.add_argument(
        "--kv-cache",
        default="dynamic",
        choices=("dynamic", "static"),
        help="eval mode: the KV cache (model_vqa's flag)",
    )
    parser.add_argument(
        "--model-dir",
        default=None,
        help="reuse the model in this folder (python -m llava.model.tiny --preset P --out DIR); "
        "default: build the preset in a temporary folder",
    )
    parser.add_argument("--local_rank", type=int, default=-1, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def device_name() -> str:
    import torch

    return torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU ({os.cpu_count()} cores)"


# Dense bf16 peak TFLOP/s by card name (no sparsity); PEAK_TFLOPS overrides, unknown cards get no MFU.
PEAK_BF16_TFLOPS = {
    "H200": 989.0,
    "H100 PCIe": 756.0,
    "H100": 989.0,
    "A100": 312.0,
    "L40S": 362.0,
    "L4": 121.0,
    "A10": 125.0,
}


def peak_tflops(device: str) -> float | None:
    """The card's dense bf16 peak: ``PEAK_TFLOPS`` if set, else the table (longest matching name first)."""
    if os.environ.get("PEAK_TFLOPS"):
        return float(os.environ["PEAK_TFLOPS"])
    for name in sorted(PEAK_BF16_TFLOPS, key=len, reverse=True):
        if name in device:
            return PEAK_BF16_TFLOPS[name]
    return None


def logical_parameters(module) -> int:
    """Parameters as the model has them, 4-bit weights counted unpacked (bitsandbytes stores two per byte)."""
    total = 0
    for parameter in module.parameters():
        state = getattr(parameter, "quant_state", None)
        total += int(state.shape.numel()) if state is not None and hasattr(state, "shape") else parameter.numel()
    return total


def training_flops_per_sample(model, tokens_per_sample: int, checkpointing: bool) -> float:
    """FLOPs of one sample's step: the language model with a frozen base (LoRA) costs 2N forward +
    2N backward (input gradients only) per token, plus 2N recomputed with checkpointing; the
    frozen vision tower runs forward once per image (its patches plus CLS)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    tower = base.get_vision_tower() if hasattr(base, "get_vision_tower") else None
    tower_parameters = logical_parameters(tower) if tower is not None else 0
    language = logical_parameters(base) - tower_parameters
    image_tokens = tower.num_image_tokens + 1 if tower is not None else 0
    return (6 if checkpointing else 4) * language * tokens_per_sample + 2 * tower_parameters * image_tokens


def model_folder(args, work: Path) -> Path:
    """``--model-dir`` when it holds a model (built once, reused by every stage), else a fresh build."""
    from llava.model.tiny import build_tiny_llava

    if args.model_dir and (Path(args.model_dir) / "config.json").is_file():
        return Path(args.model_dir)
    return build_tiny_llava(Path(args.model_dir) if args.model_dir else work / "llava-bench", preset=args.preset)


def eval_benchmark(args) -> dict:
    """Questions/s of batched greedy answering (the code the evaluation and model_vqa share)."""
    import torch

    from llava.conversation import conv_templates
    from llava.data.synthetic import draw
    from llava.eval.generation import GenerationSettings, answer_batch, build_prompt
    from llava.mm_utils import process_images
    from llava.model.builder import load_pretrained_model

    work = Path(tempfile.mkdtemp(prefix="llava-bench-"))
    model_dir = model_folder(args, work)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    tokenizer, model, processor, _ = load_pretrained_model(str(model_dir), None, "llava-bench", device=device)
    template = conv_templates["vicuna_v1"]
    prompt = build_prompt("What colour is the shape?\nAnswer the question using a single word or phrase.", template)
    picture = draw("red", "circle", size=(64, 48))
    # Never stop early: every answer is max_new_tokens long, so numbers compare across models.
    settings = GenerationSettings(max_new_tokens=args.max_new_tokens, kv_cache=args.kv_cache)
    rows = []
    for batch_size in args.eval_batch_sizes:
        images = process_images([picture] * batch_size, processor, model.config)
        answer_batch(model, tokenizer, [prompt] * batch_size, images, settings)  # warm-up
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        done = 0
        while done < args.questions:
            answer_batch(model, tokenizer, [prompt] * batch_size, images, settings)
            done += batch_size
        if device == "cuda":
            torch.cuda.synchronize()
        rows.append({"batch_size": batch_size, "questions_per_s": done / (time.perf_counter() - start)})
    result = {
        "mode": "eval",
        "preset": args.preset,
        "device": device_name(),
        "max_new_tokens": args.max_new_tokens,
        "kv_cache": args.kv_cache,
        "torch_threads": torch.get_num_threads(),
        "rows": rows,
    }
    print(f"| eval {args.preset} on {result['device']}, {args.kv_cache} KV cache | batch | questions/s |")
    for row in rows:
        print(f"| {'':<30} | {row['batch_size']:5d} | {row['questions_per_s']:11.1f} |")
    return result


def checkpoint_benchmark(args) -> dict:
    """Save/load time of a tiny LoRA run, and the size of a QLoRA checkpoint for the preset."""
    from peft import LoraConfig, get_peft_model

    from llava.model import LlavaLlamaForCausalLM
    from llava.model.builder import load_pretrained_model
    from llava.model.hub_kernels import kernel_kwargs
    from llava.model.tiny import PRESETS, build_tiny_llava
    from llava.train import checkpointing
    from llava.train.model_setup import find_all_linear_names

    work = Path(tempfile.mkdtemp(prefix="llava-bench-"))
    result = {"mode": "checkpoint", "device": device_name()}
    if args.preset == "tiny":
        model_dir = build_tiny_llava(work / "llava-bench")
        model = LlavaLlamaForCausalLM.from_pretrained(str(model_dir), **kernel_kwargs(False))
        model = get_peft_model(
            model, LoraConfig(r=args.lora_r, lora_alpha=2 * args.lora_r, target_modules=find_all_linear_names(model))
        )
        model.get_base_model().get_model().mm_projector.requires_grad_(True)
        run = work / "llava-bench-lora"
        start = time.perf_counter()
        checkpointing.save_lora_run(model, run, argparse.Namespace(lora_bias="none"))
        result["save_s"] = time.perf_counter() - start
        start = time.perf_counter()
        load_pretrained_model(str(run), str(model_dir), run.name, device="cpu")
        result["load_s"] = time.perf_counter() - start
        result["files_bytes"] = {p.name: p.stat().st_size for p in run.iterdir()}
    # Sizes for the preset's shapes, from the parameter counts (no weights materialised).
    from accelerate import init_empty_weights

    from llava.model import LlavaConfig

    spec = PRESETS[args.preset]
    with init_empty_weights():
        config = LlavaConfig(
            vocab_size=spec["vocab_size"],
            **spec["text"],
            mm_hidden_size=spec["vision"]["hidden_size"],
            mm_projector_type="mlp2x_gelu",
        )
        base = LlavaLlamaForCausalLM(config)
        from llava.model.multimodal_projector.builder import build_projector

        base.get_model().mm_projector = build_projector("mlp2x_gelu", config.mm_hidden_size, config.hidden_size)
        peft_model = get_peft_model(
            base, LoraConfig(r=args.lora_r, lora_alpha=2 * args.lora_r, target_modules=find_all_linear_names(base))
        )
    lora = sum(p.numel() for n, p in peft_model.named_parameters() if "lora_" in n)
    projector = sum(p.numel() for n, p in peft_model.named_parameters() if "mm_projector" in n)
    # The recipe (QLoRA, --bf16, DeepSpeed bf16) saves adapter and projector in bf16.
    adapter_bytes, non_lora_bytes = lora * 2, projector * 2
    result.update(
        {
            "preset": args.preset,
            "lora_r": args.lora_r,
            "lora_parameters": lora,
            "projector_parameters": projector,
            "adapter_bytes": adapter_bytes,
            "non_lora_bytes": non_lora_bytes,
            "dtypes": "bf16 (QLoRA --bits 4 --bf16 under DeepSpeed)",
        }
    )
    print(
        f"| QLoRA checkpoint {args.preset} r={args.lora_r} | adapter {lora / 1e6:.1f} M params = "
        f"{adapter_bytes / 2**20:.0f} MiB (bf16) | non_lora_trainables {projector / 1e6:.1f} M = "
        f"{non_lora_bytes / 2**20:.0f} MiB (bf16) |"
    )
    if "save_s" in result:
        print(f"| tiny LoRA run: save {result['save_s'] * 1000:.0f} ms, load {result['load_s'] * 1000:.0f} ms |")
    return result


def main(argv=None) -> dict:
    args = parse(argv)
    if args.mode == "train":
        return train_benchmark(args)
    result = eval_benchmark(args) if args.mode == "eval" else checkpoint_benchmark(args)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return result


def train_benchmark(args) -> dict:
    import torch
    from transformers import TrainerCallback

    from llava.data.synthetic import write_llava_vqa
    from llava.train.step_phases import StepPhases
    from llava.train.train import train

    class StepTimer(TrainerCallback):
        def __init__(self):
            self.times: list[float] = []
            self._start = 0.0

        def on_step_begin(self, *_, **__):
            self._start = time.perf_counter()

        def on_step_end(self, *_, **__):
            self.times.append(time.perf_counter() - self._start)

    work = Path(tempfile.mkdtemp(prefix="llava-bench-"))
    model_dir = model_folder(args, work)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    total_steps = args.warmup_steps + args.steps + args.phase_steps
    samples_needed = total_steps * args.batch_size * world
    data_dir = write_llava_vqa(work / "data", count=samples_needed, text_only=0)
    flags = [
        "--model_name_or_path",
        str(model_dir),
        "--version",
        "v1",
        "--data_path",
        str(data_dir / "train.json"),
        "--image_folder",
        str(data_dir / "images"),
        "--vision_tower",
        str(model_dir / "clip-vision-tower"),
        "--mm_projector_type",
        "mlp2x_gelu",
        "--mm_vision_select_layer",
        "-2",
        "--mm_use_im_start_end",
        "False",
        "--mm_use_im_patch_token",
        "False",
        "--image_aspect_ratio",
        "pad",
        "--lora_enable",
        "True",
        "--lora_r",
        str(args.lora_r),
        "--lora_alpha",
        str(2 * args.lora_r),
        "--mm_projector_lr",
        "2e-5",
        "--bits",
        str(args.bits),
        "--bf16",
        str(args.bf16),
        "--output_dir",
        str(work / "out"),
        "--num_train_epochs",
        "1",
        "--max_steps",
        str(total_steps),
        "--per_device_train_batch_size",
        str(args.batch_size),
        "--learning_rate",
        "2e-4",
        "--save_strategy",
        "no",
        "--logging_steps",
        "1000",
        "--report_to",
        "none",
        "--dataloader_num_workers",
        "0",
        "--activation_checkpointing",  # transformers 5's name (auto too)
        str(args.gradient_checkpointing),
        "--model_max_length",
        "2048" if args.preset != "tiny" else "512",
    ]
    if args.deepspeed:
        flags += ["--deepspeed", args.deepspeed]
    flags += shlex.split(args.train_args)
    if args.local_rank >= 0:
        flags += ["--local_rank", str(args.local_rank)]

    timer = StepTimer()
    phases = StepPhases(first_step=args.warmup_steps + args.steps)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    trainer = train(argv=flags, callbacks=[timer, phases])
    timed = timer.times[args.warmup_steps : args.warmup_steps + args.steps]
    median = statistics.median(timed)
    checkpointing = bool(trainer.args.activation_checkpointing)

    dataset = trainer.train_dataset
    image_tokens = (
        trainer.model.get_vision_tower().num_image_tokens if hasattr(trainer.model, "get_vision_tower") else 0
    )
    sample = dataset[0]
    tokens_per_sample = int(sample["input_ids"].numel()) - 1 + image_tokens
    samples_per_step = args.batch_size * world
    flops_per_sample = training_flops_per_sample(trainer.model, tokens_per_sample, checkpointing)
    peak = peak_tflops(device_name())
    mfu = flops_per_sample * samples_per_step / median / (peak * 1e12) if peak else None
    result = {
        "mode": "train",
        "mfu": mfu,
        "peak_tflops": peak,
        "flops_per_sample": flops_per_sample,
        "preset": args.preset,
        "bits": args.bits,
        "bf16": args.bf16,
        "deepspeed": args.deepspeed,
        "processes": world,
        "batch_size_per_device": args.batch_size,
        "steps_timed": len(timed),
        "median_step_s": median,
        "samples_per_s": samples_per_step / median,
        "tokens_per_s": samples_per_step * tokens_per_sample / median,
        "tokens_per_sample": tokens_per_sample,
        "gradient_checkpointing": checkpointing,
        "phases_ms": phases.medians_ms(),
        "device": device_name(),
        "peak_memory_gib": (torch.cuda.max_memory_allocated() / 2**30) if torch.cuda.is_available() else None,
        "torch_threads": torch.get_num_threads(),
    }
    if trainer.args.process_index == 0:
        print(f"| {'setting':<38} | median step | samples/s | tokens/s |")
        name = f"{args.preset} bits={args.bits} ds={Path(args.deepspeed).name if args.deepspeed else '-'} x{world}"
        print(
            f"| {name:<38} | {median * 1000:8.1f} ms | {result['samples_per_s']:9.1f} | {result['tokens_per_s']:8.0f} |"
        )
        print(phases.format())
        if args.json:
            Path(args.json).write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    from llava.entry import run

    sys.exit(run(main))
