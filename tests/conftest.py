"""Shared fixtures: tiny tokenizer and models built in-process, never downloaded.

The suite pins CPU numbers (losses, answers) and spawns training that expects a CPU, so CUDA
is hidden from every test and every subprocess it starts (``CUDA_VISIBLE_DEVICES=``), on any
machine. The ``gpu``-marked tests in ``tests/gpu`` run their work in subprocesses given
:func:`devices.gpu_environment`, which restores what the user had.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from devices import hide_cuda

hide_cuda()  # before anything asks torch about CUDA

PROJECT_CODE = tuple(str(Path(__file__).resolve().parents[1] / part) for part in ("llava", "scripts"))


@pytest.fixture(scope="session", autouse=True)
def _remove_deepspeed_shared_memory():
    """DeepSpeed's CPU all-reduce leaves a buffer in /dev/shm per process (about 70 MB each) and
    never removes it; the suite's dozens of runs would fill the machine's memory. Remove the ones
    this session created once it ends."""
    import glob
    import os
    import time

    started = time.time()
    yield
    for path in glob.glob("/dev/shm/deepspeed_*"):
        try:
            if os.stat(path).st_mtime >= started:
                os.unlink(path)
        except OSError:
            pass


@pytest.fixture(scope="session", autouse=True)
def _every_project_load_says_use_kernels():
    """Fail any test in which the project's code loads a model leaving transformers' Hub-kernel default.

    transformers 5 turns ``use_kernels`` on by default and fetches kernels from the Hub; every
    load in llava/ and scripts/ must pass it (``llava.model.hub_kernels``). Loads made by the
    tests themselves are not checked.
    """
    from transformers.modeling_utils import PreTrainedModel

    original = PreTrainedModel.from_pretrained.__func__

    def checked(cls, *args, **kwargs):
        caller = sys._getframe(1).f_code.co_filename
        if caller.startswith(PROJECT_CODE) and "use_kernels" not in kwargs:
            raise AssertionError(
                f"{caller} loads {cls.__name__} without use_kernels: transformers would fetch Hub kernels"
            )
        return original(cls, *args, **kwargs)

    PreTrainedModel.from_pretrained = classmethod(checked)
    yield
    PreTrainedModel.from_pretrained = classmethod(original)


@pytest.fixture(scope="session")
def tiny_tokenizer_dir(tmp_path_factory):
    """A folder holding the tiny SentencePiece Llama tokenizer (built once per session)."""
    from llava.model.tiny import build_tiny_tokenizer

    out = tmp_path_factory.mktemp("tiny-tokenizer")
    build_tiny_tokenizer(out)
    return out


@pytest.fixture()
def tiny_tokenizer(tiny_tokenizer_dir):
    """A fresh tokenizer as upstream training configures it: right padding, pad = unk."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(
        str(tiny_tokenizer_dir), use_fast=False, padding_side="right", model_max_length=512
    )
    tokenizer.pad_token = tokenizer.unk_token
    return tokenizer


@pytest.fixture(scope="session")
def tiny_llava_dir(tmp_path_factory):
    """A tiny random LLaVA checkpoint in upstream's layout (read-only: copy before changing)."""
    from llava.model.tiny import build_tiny_llava

    return build_tiny_llava(tmp_path_factory.mktemp("tiny-llava") / "llava-tiny")


@pytest.fixture()
def tiny_llava(tiny_llava_dir):
    """The tiny LLaVA with its CLIP tower loaded, in eval mode, float32 on the CPU."""
    from llava.model import LlavaLlamaForCausalLM

    model = LlavaLlamaForCausalLM.from_pretrained(str(tiny_llava_dir))
    model.get_vision_tower().load_model()
    return model.eval()


@pytest.fixture(scope="session")
def colour_vqa_dir(tmp_path_factory):
    """Read-only small LLaVA-format VQA set: 24 colour questions + 2 text-only entries."""
    from llava.data.synthetic import write_llava_vqa

    return write_llava_vqa(tmp_path_factory.mktemp("colour-vqa"))
