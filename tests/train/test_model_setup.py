"""llava.train.model_setup: the checkpointing variant (upstream's reentrant one unless the user picks)."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
import torch

from llava.train.model_setup import UPSTREAM_CHECKPOINTING_KWARGS, checkpointing_kwargs, prepare_for_training


def args(**overrides):
    values = dict(gradient_checkpointing=True, bits=16, activation_checkpointing_kwargs=None)
    values.update(overrides)
    return SimpleNamespace(**values)


def test_upstream_variant_unless_the_user_gives_one():
    assert checkpointing_kwargs(args()) == {"use_reentrant": True} == UPSTREAM_CHECKPOINTING_KWARGS
    assert checkpointing_kwargs(args(activation_checkpointing_kwargs={"use_reentrant": False})) == {
        "use_reentrant": False
    }
    assert checkpointing_kwargs(args(gradient_checkpointing_kwargs={"use_reentrant": False})) == {
        "use_reentrant": False
    }


def test_reentrant_checkpointing_gives_the_gradients_of_no_checkpointing(tiny_llava):
    torch.manual_seed(0)
    ids = torch.randint(3, tiny_llava.config.vocab_size, (2, 10))

    def loss_and_grads(checkpointing: bool):
        model = copy.deepcopy(tiny_llava).train()
        training_args = args(gradient_checkpointing=checkpointing)
        model = prepare_for_training(model, training_args)
        if checkpointing:
            assert training_args.activation_checkpointing_kwargs == {"use_reentrant": True}
            model.gradient_checkpointing_enable(
                gradient_checkpointing_kwargs=training_args.activation_checkpointing_kwargs
            )
            assert model.model.layers[0].gradient_checkpointing
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    plain_loss, plain = loss_and_grads(False)
    checkpointed_loss, checkpointed = loss_and_grads(True)
    assert plain_loss == checkpointed_loss
    assert plain.keys() == checkpointed.keys() and plain
    for name in plain:
        torch.testing.assert_close(checkpointed[name], plain[name], rtol=1e-5, atol=1e-7, msg=name)


def test_torch_compile_compiles_decoder_layers_and_trains_the_same(tiny_llava_dir, colour_vqa_dir, tmp_path):
    """--torch_compile: each decoder layer through dynamo (the eager backend here: no compiler on CI),
    the Trainer's whole-model compile off, and the same losses as without."""
    import json
    import sys

    from launch import HELPER, run
    from lora_fixture import tiny_lora_flags

    losses = {}
    for name, extra in (("plain", []), ("compiled", ["--torch_compile", "True", "--torch_compile_backend", "eager"])):
        out = tmp_path / f"llava-tiny-{name}-lora"
        report = tmp_path / f"{name}.json"
        result = run([sys.executable, str(HELPER), *tiny_lora_flags(tiny_llava_dir, colour_vqa_dir, out), *extra,
                      "--fingerprint", str(report)])  # fmt: skip
        losses[name] = json.loads(report.read_text())["losses"]
        if extra:
            assert "--torch_compile: 2 decoder layers compiled (backend eager)" in result.stdout + result.stderr
    assert losses["compiled"] == pytest.approx(losses["plain"], rel=1e-5)
