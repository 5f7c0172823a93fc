"""The base check across dtypes: bases stored in fp32, fp16 and bf16, each loaded in fp32, fp16,
bf16, 4-bit and 8-bit. For every pair of loads of one stored base, the record training writes from
the first and the check an answering load makes with the second agree; another base of the same
shapes (``seed=1``) is refused in every load."""

from __future__ import annotations

import shutil
from types import SimpleNamespace

import pytest
import torch

from llava.model.base_record import check_base, recorded_base
from llava.model.builder import _quantization_kwargs
from llava.model.hub_kernels import kernel_kwargs
from llava.model.tiny import build_tiny_llava
from llava.train.model_setup import record_base_model

STORED = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
LOADS = ["fp32", "fp16", "bf16", "4bit", "8bit"]


def _load(folder, load: str):
    from llava.model import LlavaLlamaForCausalLM

    if load in STORED:
        return LlavaLlamaForCausalLM.from_pretrained(str(folder), dtype=STORED[load], **kernel_kwargs())
    pytest.importorskip("bitsandbytes")
    quant = _quantization_kwargs(load == "8bit", load == "4bit", torch.bfloat16)
    return LlavaLlamaForCausalLM.from_pretrained(
        str(folder), dtype=torch.bfloat16, device_map={"": "cpu"}, **quant, **kernel_kwargs()
    )


@pytest.fixture(scope="module")
def bases(tmp_path_factory):
    """``{"fp32": dir, "fp16": dir, "bf16": dir, "other": dir}``: one base in three storage dtypes."""
    from llava.model import LlavaLlamaForCausalLM

    root = tmp_path_factory.mktemp("grid")
    source = build_tiny_llava(root / "fp32")
    folders = {"fp32": source, "other": build_tiny_llava(root / "other", seed=1)}
    for name in ("fp16", "bf16"):
        folder = root / name
        shutil.copytree(source, folder)
        for weights in folder.glob("*.safetensors"):
            weights.unlink()
        model = LlavaLlamaForCausalLM.from_pretrained(str(source), **kernel_kwargs())
        model.to(STORED[name]).save_pretrained(str(folder))
        assert next(model.parameters()).dtype == STORED[name]
        folders[name] = folder
    return folders


@pytest.mark.parametrize("stored", sorted(STORED))
def test_every_load_of_one_base_accepts_every_other_and_refuses_another_base(bases, stored):
    models = {load: _load(bases[stored], load) for load in LOADS}
    records = {}
    for load, model in models.items():
        record_base_model(model, str(bases[stored]))  # what train() records
        records[load] = SimpleNamespace(to_dict=lambda config=model.config: config.to_dict())
        assert recorded_base(records[load]) is not None
    for trained in LOADS:
        for answered in LOADS:
            check_base("run", records[trained], str(bases[stored]), models[answered])
    for load in LOADS:
        other = _load(bases["other"], load)
        with pytest.raises(ValueError, match="is another model"):
            check_base("run", records["bf16"], str(bases["other"]), other)
