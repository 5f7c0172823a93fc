"""The LLaVA model: image splicing, loss masking, truncation and batched generation."""

from __future__ import annotations

import pytest
import torch

from llava.constants import IGNORE_INDEX, IMAGE_TOKEN_INDEX

IMAGE = IMAGE_TOKEN_INDEX


def _images(count: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(count, 3, 32, 32, generator=generator)


def test_config_is_registered_with_auto_classes(tiny_llava_dir):
    from transformers import AutoConfig, AutoModelForCausalLM

    from llava.model import LlavaConfig, LlavaLlamaForCausalLM

    config = AutoConfig.from_pretrained(str(tiny_llava_dir))
    assert isinstance(config, LlavaConfig) and config.model_type == "llava_llama"
    assert isinstance(AutoModelForCausalLM.from_config(config), LlavaLlamaForCausalLM)


def test_weight_names_match_upstream(tiny_llava):
    names = set(tiny_llava.state_dict())
    assert {
        "model.mm_projector.0.weight",
        "model.mm_projector.2.bias",
        "lm_head.weight",
        "model.embed_tokens.weight",
    } <= names
    assert any(name.startswith("model.vision_tower.vision_tower.") for name in names)
    assert all(not p.requires_grad for p in tiny_llava.get_vision_tower().parameters())


def test_splice_puts_image_features_at_the_placeholder(tiny_llava):
    ids = torch.tensor([[1, 10, IMAGE, 11, 12]])
    labels = torch.tensor([[IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX, 11, 12]])
    images = _images(1)
    spliced = tiny_llava.splice_image_features(ids, torch.ones_like(ids), labels, images)
    tokens = tiny_llava.get_vision_tower().num_image_tokens
    assert spliced.inputs_embeds.shape == (1, 4 + tokens, tiny_llava.config.hidden_size)
    features = tiny_llava.encode_images(images)[0]
    torch.testing.assert_close(spliced.inputs_embeds[0, 2 : 2 + tokens], features)
    embed = tiny_llava.get_input_embeddings()
    torch.testing.assert_close(spliced.inputs_embeds[0, :2], embed(torch.tensor([1, 10])))
    assert spliced.labels[0, 2 : 2 + tokens].eq(IGNORE_INDEX).all()
    assert spliced.labels[0, -2:].tolist() == [11, 12]
    assert spliced.position_ids[0].tolist() == list(range(4 + tokens))


def test_splice_right_pads_rows_of_different_length(tiny_llava):
    ids = torch.tensor([[1, IMAGE, 5, 6, 7], [1, IMAGE, 5, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    spliced = tiny_llava.splice_image_features(ids, mask, ids.clone(), _images(2))
    tokens = tiny_llava.get_vision_tower().num_image_tokens
    assert spliced.attention_mask.sum(1).tolist() == [4 + tokens, 2 + tokens]
    assert not spliced.attention_mask[1, -2:].any()
    assert spliced.labels[1, -2:].eq(IGNORE_INDEX).all()
    left = tiny_llava.splice_image_features(ids, mask, None, _images(2), padding_side="left")
    assert not left.attention_mask[1, :2].any() and left.attention_mask[1, 2:].all()
    assert left.position_ids[1, 2:].tolist() == list(range(2 + tokens))


def test_sample_without_placeholder_uses_no_image_features(tiny_llava):
    ids = torch.tensor([[1, 5, 6, 7]])
    spliced = tiny_llava.splice_image_features(ids, None, None, _images(1))
    assert spliced.inputs_embeds.shape[1] == 4


def test_too_few_images_is_an_error(tiny_llava):
    ids = torch.tensor([[1, IMAGE, 5, IMAGE, 6]])
    with pytest.raises(ValueError, match="more <image> placeholders than images"):
        tiny_llava.splice_image_features(ids, None, None, _images(1))


def test_spliced_sequence_is_cut_to_tokenizer_model_max_length(tiny_llava):
    tiny_llava.config.tokenizer_model_max_length = 10
    ids = torch.tensor([[1, IMAGE] + list(range(5, 25))])
    spliced = tiny_llava.splice_image_features(ids, None, ids.clone(), _images(1))
    assert spliced.inputs_embeds.shape[1] == 10


def test_forward_loss_ignores_prompt_and_image_positions(tiny_llava):
    ids = torch.tensor([[1, 10, IMAGE, 11, 12, 2]])
    labels = torch.tensor([[IGNORE_INDEX] * 4 + [12, 2]])
    out = tiny_llava(input_ids=ids, labels=labels, images=_images(1))
    logits = out.logits[0]
    tokens = tiny_llava.get_vision_tower().num_image_tokens
    # Positions predicting the two learned tokens (shifted by one).
    targets = torch.tensor([12, 2])
    predict_at = torch.tensor([2 + tokens, 3 + tokens])
    expected = torch.nn.functional.cross_entropy(logits[predict_at], targets)
    torch.testing.assert_close(out.loss, expected)


def test_backward_reaches_projector_not_clip(tiny_llava):
    tiny_llava.train()
    ids = torch.tensor([[1, 10, IMAGE, 11, 12]])
    out = tiny_llava(input_ids=ids, labels=ids.clamp(min=0), images=_images(1))
    out.loss.backward()
    projector = tiny_llava.get_model().mm_projector
    assert projector[0].weight.grad is not None and projector[0].weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in tiny_llava.get_vision_tower().parameters())


def test_batched_greedy_generation_equals_batch_of_one(tiny_llava):
    prompts = [[1, 10, IMAGE, 11, 12, 13, 14], [1, IMAGE, 20], [1, 30, 31, IMAGE, 32, 33]]
    images = _images(3)
    width = max(len(p) for p in prompts)
    ids = torch.zeros(3, width, dtype=torch.long)
    mask = torch.zeros(3, width, dtype=torch.long)
    for row, prompt in enumerate(prompts):
        ids[row, : len(prompt)] = torch.tensor(prompt)  # right-padded, as a collator would
        mask[row, : len(prompt)] = 1
    batched = tiny_llava.generate(ids, images=images, attention_mask=mask, max_new_tokens=6, do_sample=False)
    for row, prompt in enumerate(prompts):
        single = tiny_llava.generate(
            torch.tensor([prompt]), images=images[row : row + 1], max_new_tokens=6, do_sample=False
        )
        assert batched[row].tolist() == single[0].tolist()


def test_generate_without_images_is_plain_llama(tiny_llava):
    out = tiny_llava.generate(torch.tensor([[1, 10, 11]]), max_new_tokens=3, do_sample=False)
    assert out.shape == (1, 6)
