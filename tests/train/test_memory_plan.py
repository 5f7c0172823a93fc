"""llava.train.memory_plan and ``--gradient_checkpointing auto``: the estimate, the choice, the flag."""

from __future__ import annotations

import logging

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from llava.train.arguments import ArgumentError, parse_args, take_auto_checkpointing
from llava.train.memory_plan import GIB, MARGIN, activation_bytes, lora_parameters, plan_checkpointing

SEVEN_B = LlamaConfig(
    hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32, vocab_size=32000
)


def tiny_llama() -> LlamaForCausalLM:
    config = LlamaConfig(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=256,
    )
    return LlamaForCausalLM(config)


def test_lora_parameter_count_matches_peft():
    from peft import LoraConfig, get_peft_model

    model = tiny_llama()
    names = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    peft_model = get_peft_model(model, LoraConfig(r=8, target_modules=names))
    counted = sum(p.numel() for n, p in peft_model.named_parameters() if "lora_" in n)
    assert lora_parameters(model.config, 8) == counted
    # The 7B recipe's adapters (docs/PERFORMANCE.md: 319.8 M).
    assert round(lora_parameters(SEVEN_B, 128) / 1e6, 1) == 319.8


def test_seven_b_estimate_is_in_the_expected_range():
    """Batch 16 of 636 tokens (576 image tokens): tens of GiB kept, a few with checkpointing."""
    full = activation_bytes(SEVEN_B, 16, 636, 2, checkpointing=False, lora_r=128)
    saved = activation_bytes(SEVEN_B, 16, 636, 2, checkpointing=True, lora_r=128)
    assert 60 * GIB < full < 120 * GIB
    assert 4 * GIB < saved < 12 * GIB
    # Dropout's copies, a longer sample and a bigger batch all cost more.
    assert activation_bytes(SEVEN_B, 16, 636, 2, False, lora_dropout=False, lora_r=128) < full
    assert activation_bytes(SEVEN_B, 16, 1200, 2, False, lora_r=128) > full
    assert activation_bytes(SEVEN_B, 32, 636, 2, False, lora_r=128) > full


@pytest.mark.parametrize(("free_gib", "expected"), [(400, False), (40, True)])
def test_checkpointing_only_when_the_activations_do_not_fit(free_gib, expected):
    model = tiny_llama()
    model.config = SEVEN_B  # shapes of the 7B, weights of the tiny model
    plan = plan_checkpointing(
        model, 16, 636, 2, torch.device("cpu"), lora_r=128, lora_dropout=0.05, free=free_gib * GIB
    )
    assert plan.checkpointing is expected
    assert plan.budget == int((free_gib * GIB - lora_parameters(SEVEN_B, 128) * 16) * MARGIN)
    line = plan.line()
    assert line.startswith(f"--gradient_checkpointing auto: {'on' if expected else 'off'} (activations about")
    assert "16 x 636 tokens" in line


def test_the_decision_flips_at_the_budget():
    model = tiny_llama()
    first = plan_checkpointing(model, 4, 100, 4, torch.device("cpu"), free=10 * GIB)
    needed = first.activations / MARGIN + first.reserved
    assert plan_checkpointing(model, 4, 100, 4, torch.device("cpu"), free=int(needed * 1.01)).checkpointing is False
    assert plan_checkpointing(model, 4, 100, 4, torch.device("cpu"), free=int(needed * 0.99)).checkpointing is True


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["--gradient_checkpointing", "auto", "--bf16", "True"],
            (["--activation_checkpointing=False", "--bf16", "True"], True),
        ),
        (["--activation-checkpointing=AUTO"], (["--activation_checkpointing=False"], True)),
        (["--gradient_checkpointing", "True"], (["--gradient_checkpointing", "True"], False)),
        (["--gradient_checkpointing"], (["--gradient_checkpointing"], False)),
    ],
)
def test_take_auto_checkpointing(argv, expected):
    assert take_auto_checkpointing(argv) == expected


def base_flags(tmp_path):
    data = tmp_path / "train.json"
    data.write_text("[]")
    return ["--data_path", str(data), "--output_dir", str(tmp_path / "out"), "--report_to", "none"]


def test_parse_args_marks_auto_and_leaves_the_choice_for_later(tmp_path):
    _, _, training_args = parse_args([*base_flags(tmp_path), "--gradient_checkpointing", "auto"])
    assert training_args.activation_checkpointing_auto is True
    assert training_args.activation_checkpointing is False
    _, _, fixed = parse_args([*base_flags(tmp_path), "--gradient_checkpointing", "True"])
    assert fixed.activation_checkpointing_auto is False and fixed.activation_checkpointing is True


def test_auto_and_a_second_checkpointing_flag_is_a_mistake(tmp_path):
    with pytest.raises(ArgumentError, match="both given"):
        parse_args([*base_flags(tmp_path), "--gradient_checkpointing", "auto", "--activation_checkpointing", "True"])


def test_decide_checkpointing_sets_both_names_and_logs_one_line(caplog):
    from types import SimpleNamespace

    from llava.train.model_setup import decide_checkpointing

    args = SimpleNamespace(
        per_device_train_batch_size=2,
        bf16=False,
        fp16=False,
        device=torch.device("cpu"),
        lora_enable=True,
        lora_r=8,
        lora_dropout=0.05,
        activation_checkpointing=False,
        gradient_checkpointing=False,
    )
    with caplog.at_level(logging.INFO, logger="llava"):
        decide_checkpointing(tiny_llama(), args, longest_sample=64)
    lines = [record.getMessage() for record in caplog.records if "auto:" in record.getMessage()]
    assert len(lines) == 1 and lines[0].startswith("--gradient_checkpointing auto: off")
    assert args.activation_checkpointing is False and args.gradient_checkpointing is False
