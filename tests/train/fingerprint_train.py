"""Test helper: run the real ``train()`` and report what changed, as JSON.

Launched by tests exactly like the entry point (``python ...`` or
``deepspeed --num_gpus 2 ...``) with upstream flags, plus ``--fingerprint FILE``.
After training, every rank gathers each parameter (ZeRO-3 partitions them) and
rank 0 compares it with the checkpoint the run started from: base language
model and CLIP tower must be bit-identical, projector and LoRA must have moved.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from llava.train.checkpointing import gathered_copy  # noqa: E402
from llava.train.train import train  # noqa: E402


def _canonical(name: str) -> str:
    name = name.removeprefix("base_model.model.")
    return name.replace(".base_layer.", ".")


def main() -> None:
    argv = sys.argv[1:]
    index = argv.index("--fingerprint")
    report_path = Path(argv[index + 1])
    del argv[index : index + 2]
    trainer = train(argv=argv)

    model_path = Path(argv[argv.index("--model_name_or_path") + 1])
    tower_path = Path(argv[argv.index("--vision_tower") + 1])
    original = load_file(str(model_path / "model.safetensors"))
    tower = load_file(str(tower_path / "model.safetensors"))

    result = {
        "base_identical": True,
        "tower_identical": True,
        "projector_changed": False,
        "lora_nonzero": False,
        "trainable": [],
        "mismatches": [],
    }
    for name, param in trainer.model.named_parameters():
        value = gathered_copy(param)  # every rank gathers, in the same order
        key = _canonical(name)
        if param.requires_grad:
            result["trainable"].append(key)
        if "lora_B" in key:
            result["lora_nonzero"] |= bool(value.abs().sum() > 0)
        elif "lora_" in key:
            continue
        elif "mm_projector" in key:
            result["projector_changed"] |= not torch.equal(value.float(), original[key].float())
        elif "vision_tower" in key:
            tower_key = key.split("model.vision_tower.vision_tower.", 1)[1]
            if not torch.equal(value, tower[tower_key].to(value.dtype)):  # frozen, maybe cast
                result["tower_identical"] = False
                result["mismatches"].append(key)
        elif not value.dtype.is_floating_point:
            result["packed_4bit_skipped"] = result.get("packed_4bit_skipped", 0) + 1
        elif not torch.equal(value, original[key].to(value.dtype)):
            # Frozen weights may be cast (bf16 embeddings under QLoRA), never trained.
            result["base_identical"] = False
            result["mismatches"].append(key)
    result["losses"] = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    if trainer.args.process_index == 0:
        report_path.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
