"""Upstream's train.py / llava_trainer.py / utils.py helpers: same parameters, same results as ours."""

from __future__ import annotations

import copy

import pytest
import torch

from llava.conversation import conv_templates
from llava.train import llava_trainer
from llava.train.data import preprocess
from llava.train.train import (
    get_mm_adapter_state_maybe_zero_3,
    get_peft_state_maybe_zero_3,
    get_peft_state_non_lora_maybe_zero_3,
    maybe_zero_3,
    preprocess_llama_2,
    preprocess_mpt,
    preprocess_plain,
    preprocess_v1,
    rank0_print,
    smart_tokenizer_and_embedding_resize,
)

TURNS = [
    {"from": "human", "value": "<image>\nWhat colour is the shape?"},
    {"from": "gpt", "value": "red"},
    {"from": "human", "value": "How many?"},
    {"from": "gpt", "value": "one"},
]
CAPTION = [{"from": "human", "value": "<image>"}, {"from": "gpt", "value": "a red circle"}]


def _same(a, b):
    assert [t.tolist() for t in a["input_ids"]] == [t.tolist() for t in b["input_ids"]]
    assert [t.tolist() for t in a["labels"]] == [t.tolist() for t in b["labels"]]
    assert any((labels != -100).any() for labels in a["labels"])


@pytest.mark.parametrize("has_image", [True, False])
def test_preprocess_v1_and_llama_2_labels_equal_ours(tiny_tokenizer, has_image):
    _same(
        preprocess_v1([copy.deepcopy(TURNS)], tiny_tokenizer, has_image),
        preprocess(
            [copy.deepcopy(TURNS)], tiny_tokenizer, has_image, conversation_template=conv_templates["vicuna_v1"]
        ),
    )
    _same(
        preprocess_llama_2([copy.deepcopy(TURNS)], tiny_tokenizer, has_image),
        preprocess(
            [copy.deepcopy(TURNS)], tiny_tokenizer, has_image, conversation_template=conv_templates["llava_llama_2"]
        ),
    )
    _same(
        preprocess_mpt([copy.deepcopy(TURNS)], tiny_tokenizer, has_image),
        preprocess([copy.deepcopy(TURNS)], tiny_tokenizer, has_image, conversation_template=conv_templates["mpt"]),
    )


def test_preprocess_v1_follows_default_conversation_like_upstream_train(tiny_tokenizer, monkeypatch):
    import importlib

    conversation = importlib.import_module("llava.conversation")  # sys.modules' module, which upstream's train() sets
    monkeypatch.setattr(conversation, "default_conversation", conv_templates["llava_v1"])
    _same(
        preprocess_v1([copy.deepcopy(TURNS)], tiny_tokenizer, True),
        preprocess([copy.deepcopy(TURNS)], tiny_tokenizer, True, conversation_template=conv_templates["llava_v1"]),
    )


def test_preprocess_plain_learns_the_caption_and_separator(tiny_tokenizer):
    out = preprocess_plain([copy.deepcopy(CAPTION)], tiny_tokenizer)
    learned = [
        t for t, label in zip(out["input_ids"][0].tolist(), out["labels"][0].tolist(), strict=True) if label != -100
    ]
    assert tiny_tokenizer.decode(learned).strip() == "a red circle"
    _same(
        out, preprocess([copy.deepcopy(CAPTION)], tiny_tokenizer, True, conversation_template=conv_templates["plain"])
    )


def _named():
    torch.manual_seed(0)
    params = {
        "base_model.model.layers.0.q_proj.lora_A.default.weight": torch.nn.Parameter(torch.randn(2, 4)),
        "base_model.model.layers.0.q_proj.weight": torch.nn.Parameter(torch.randn(4, 4), requires_grad=False),
        "base_model.model.layers.0.q_proj.bias": torch.nn.Parameter(torch.randn(4), requires_grad=False),
        "base_model.model.model.mm_projector.0.weight": torch.nn.Parameter(torch.randn(4, 4)),
    }
    return list(params.items())


def test_state_collectors_keep_upstreams_selection():
    named = _named()
    assert set(get_peft_state_maybe_zero_3(named, "none")) == {"base_model.model.layers.0.q_proj.lora_A.default.weight"}
    assert "base_model.model.layers.0.q_proj.bias" in get_peft_state_maybe_zero_3(named, "all")
    assert set(get_peft_state_non_lora_maybe_zero_3(named)) == {"base_model.model.model.mm_projector.0.weight"}
    assert len(get_peft_state_non_lora_maybe_zero_3(named, require_grad_only=False)) == 3
    projector = get_mm_adapter_state_maybe_zero_3(named, ["mm_projector"])
    assert list(projector) == ["base_model.model.model.mm_projector.0.weight"]
    value = projector["base_model.model.model.mm_projector.0.weight"]
    assert torch.equal(value, named[3][1]) and not value.requires_grad and value.data_ptr() != named[3][1].data_ptr()
    copied = maybe_zero_3(named[0][1], ignore_status=True, name="x")
    assert torch.equal(copied, named[0][1]) and copied.device.type == "cpu"


def test_smart_resize_adds_tokens_with_mean_rows(tiny_tokenizer, tiny_llava):
    before = tiny_llava.get_input_embeddings().weight.detach().clone()
    smart_tokenizer_and_embedding_resize(
        {"additional_special_tokens": ["<new_a>", "<new_b>"]}, tiny_tokenizer, tiny_llava
    )
    after = tiny_llava.get_input_embeddings().weight
    assert after.shape[0] == len(tiny_tokenizer) == before.shape[0] + 2
    assert torch.allclose(after[-1], before.mean(dim=0), atol=1e-6)


def test_rank0_print_prints_on_the_first_process_only(capsys, monkeypatch):
    monkeypatch.setenv("LOCAL_RANK", "1")
    rank0_print("hidden")
    monkeypatch.setenv("LOCAL_RANK", "0")
    rank0_print("shown", 1)
    assert capsys.readouterr().out == "shown 1\n"


def test_trainer_fronts_equal_ours():
    lengths = [5, -3, 7, 9, -2, 4, 8, -6, 1, 3, 2, 10]

    def gen():
        return torch.Generator().manual_seed(3)

    absolute = [abs(x) for x in lengths]
    assert llava_trainer.get_length_grouped_indices(absolute, 2, 2, gen()) == llava_trainer.length_grouped_indices(
        absolute, 2, 2, gen()
    )
    assert llava_trainer.get_modality_length_grouped_indices(
        lengths, 2, 2, gen()
    ) == llava_trainer.modality_length_grouped_indices(lengths, 2, 2, gen())
    chunks = llava_trainer.split_to_even_chunks([0, 1, 2, 3], [4, 3, 2, 1], 2)
    assert sorted(i for chunk in chunks for i in chunk) == [0, 1, 2, 3] and [len(c) for c in chunks] == [2, 2]


def test_disable_torch_init_patches_nothing():
    from llava.utils import disable_torch_init

    reset = torch.nn.Linear.reset_parameters
    disable_torch_init()
    assert torch.nn.Linear.reset_parameters is reset
