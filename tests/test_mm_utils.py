"""mm_utils: image padding and processing, image-aware tokenization with offsets, names, stopping."""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import pytest
import torch
from PIL import Image
from transformers import StoppingCriteriaList

from llava.constants import IMAGE_TOKEN_INDEX
from llava.mm_utils import (
    KeywordsStoppingCriteria,
    expand2square,
    get_model_name_from_path,
    process_images,
    tokenizer_image_token,
    tokenizer_image_token_with_offsets,
)


@pytest.fixture(scope="module")
def image_processor():
    from transformers import CLIPImageProcessor

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})


# ------------------------------------------------------------------ images


@pytest.mark.parametrize(
    "size, pasted_at",
    [((6, 2), (0, 2)), ((2, 6), (2, 0)), ((5, 2), (0, 1))],
)
def test_expand2square_centres_the_image(size, pasted_at):
    image = Image.new("RGB", size, (255, 0, 0))
    square = expand2square(image, (1, 2, 3))
    side = max(size)
    assert square.size == (side, side)
    assert square.getpixel(pasted_at) == (255, 0, 0)  # the image's top-left corner
    assert square.getpixel((0, 0)) == (1, 2, 3)  # padding


def test_expand2square_keeps_a_square_image():
    image = Image.new("RGB", (3, 3))
    assert expand2square(image, (0, 0, 0)) is image


def test_process_images_pad_uses_the_mean_colour(image_processor):
    images = [Image.new("RGB", (40, 20), (255, 0, 0)), Image.new("RGB", (10, 30), (0, 0, 255))]
    pixels = process_images(images, image_processor, SimpleNamespace(image_aspect_ratio="pad"))
    assert isinstance(pixels, torch.Tensor) and pixels.shape == (2, 3, 32, 32)
    mean = tuple(int(x * 255) for x in image_processor.image_mean)
    expected = image_processor.preprocess(expand2square(images[0], mean), return_tensors="pt")["pixel_values"][0]
    torch.testing.assert_close(pixels[0], expected)
    # The padding band (top rows of the wide image) is the mean colour: about 0 after normalisation.
    assert pixels[0, :, 0, :].abs().max() < 0.05


def test_process_images_square_runs_the_processor_as_is(image_processor):
    images = [Image.new("RGB", (40, 20), (255, 0, 0))]
    pixels = process_images(images, image_processor, SimpleNamespace(image_aspect_ratio="square"))
    torch.testing.assert_close(pixels, image_processor(images, return_tensors="pt")["pixel_values"])
    assert process_images(images, image_processor, SimpleNamespace()).shape == (1, 3, 32, 32)


def test_process_images_anyres_is_not_supported(image_processor):
    with pytest.raises(NotImplementedError, match="anyres"):
        process_images([Image.new("RGB", (4, 4))], image_processor, SimpleNamespace(image_aspect_ratio="anyres"))


# ------------------------------------------------------------- tokenization

PROMPTS = [
    "A chat. USER: <image>\nWhat is it? ASSISTANT: A red cat.</s>",
    "<image>\nA red cat.\n",
    "A chat. USER: What? ASSISTANT:",
    "USER: <image> and <image> ASSISTANT: 3 cats</s>",
    "ends with an image <image>",
    "",
]


def upstream_reference_ids(prompt, tokenizer):
    """Upstream's rule, spelled out: chunk ids, one leading BOS, each chunk's BOS dropped, -200 between."""
    chunks = [tokenizer(chunk).input_ids for chunk in prompt.split("<image>")]
    assert all(chunk[0] == tokenizer.bos_token_id for chunk in chunks)
    ids = [tokenizer.bos_token_id]
    for index, chunk in enumerate(chunks):
        if index:
            ids.append(IMAGE_TOKEN_INDEX)
        ids.extend(chunk[1:])
    return ids


@pytest.mark.parametrize("prompt", PROMPTS)
def test_tokenizer_image_token_matches_upstreams_rule(tiny_tokenizer, prompt):
    ids = tokenizer_image_token(prompt, tiny_tokenizer)
    assert ids == upstream_reference_ids(prompt, tiny_tokenizer)
    assert ids.count(tiny_tokenizer.bos_token_id) == 1 + prompt.count("<s>")
    assert ids.count(IMAGE_TOKEN_INDEX) == prompt.count("<image>")
    tensor = tokenizer_image_token(prompt, tiny_tokenizer, return_tensors="pt")
    assert tensor.dtype == torch.long and tensor.tolist() == ids


def test_tokenizer_image_token_literal_ids(tiny_tokenizer):
    ids = tokenizer_image_token("<image>\nA", tiny_tokenizer)
    pieces = tiny_tokenizer.convert_ids_to_tokens([i for i in ids if i != IMAGE_TOKEN_INDEX])
    assert ids[:2] == [1, IMAGE_TOKEN_INDEX]
    assert pieces == ["<s>", "▁", "<0x0A>", "A"]


def test_tokenizer_image_token_rejects_unknown_tensor_type(tiny_tokenizer):
    with pytest.raises(ValueError, match="Unsupported tensor type"):
        tokenizer_image_token("hi", tiny_tokenizer, return_tensors="np")


@pytest.mark.parametrize("prompt", PROMPTS)
def test_offsets_give_upstreams_ids_and_real_spans(tiny_tokenizer, prompt):
    ids, spans = tokenizer_image_token_with_offsets(prompt, tiny_tokenizer)
    assert ids == tokenizer_image_token(prompt, tiny_tokenizer)
    assert len(spans) == len(ids) and spans[0] == (0, 0)
    pieces = tiny_tokenizer.convert_ids_to_tokens([i if i >= 0 else 0 for i in ids])
    for token, piece, (start, end) in zip(ids, pieces, spans, strict=True):
        assert 0 <= start <= end <= len(prompt)
        text = prompt[start:end]
        if token == IMAGE_TOKEN_INDEX:
            assert text == "<image>"
        elif piece == "▁":
            assert text in ("", " ")  # the dummy prefix (empty) or a real space
        elif piece.startswith("<0x"):
            assert len(text) == 1  # a byte piece
        elif end > start:
            assert text == piece.replace("▁", " ") or " " + text == piece.replace("▁", " "), (piece, text)


def test_offsets_literal_spans(tiny_tokenizer):
    prompt = "Hi <image>\nA cat</s>"
    ids, spans = tokenizer_image_token_with_offsets(prompt, tiny_tokenizer)
    texts = [prompt[start:end] for start, end in spans]
    assert texts[0] == "" and ids[0] == 1  # the BOS
    assert "<image>" in texts and texts[-1] == "</s>" and ids[-1] == tiny_tokenizer.eos_token_id
    # After the image: the chunk's dummy-prefix "▁" (empty span), then "\n" as a byte piece.
    assert texts[texts.index("<image>") + 1 :] == ["", "\n", "A", " c", "at", "</s>"]
    image_at = prompt.index("<image>")
    assert spans[texts.index("<image>") + 1] == (image_at + 7, image_at + 7)


def test_offsets_without_image_split_tokenize_the_whole_prompt(tiny_tokenizer):
    prompt = "USER: <image> as text"
    ids, spans = tokenizer_image_token_with_offsets(prompt, tiny_tokenizer, split_images=False)
    assert ids == tiny_tokenizer(prompt).input_ids
    assert IMAGE_TOKEN_INDEX not in ids


# ------------------------------------------------------------------ names


@pytest.mark.parametrize(
    "path, name",
    [
        ("liuhaotian/llava-v1.5-7b", "llava-v1.5-7b"),
        ("/ckpt/llava-v1.5-7b-task-lora/", "llava-v1.5-7b-task-lora"),
        ("/ckpt/llava-lora/checkpoint-500", "llava-lora_checkpoint-500"),
        ("checkpoint-5", "checkpoint-5"),
    ],
)
def test_get_model_name_from_path(path, name):
    assert get_model_name_from_path(path) == name


# --------------------------------------------------------------- stopping


def test_keywords_stopping_criteria_is_per_sequence(tiny_tokenizer):
    prompt = torch.tensor([[1, 5, 6], [1, 5, 6]])
    criteria = KeywordsStoppingCriteria(["###"], tiny_tokenizer, prompt)
    stop = tiny_tokenizer("red cat###", add_special_tokens=False).input_ids
    going = tiny_tokenizer("red cat", add_special_tokens=False).input_ids
    width = max(len(stop), len(going))
    pad = [tiny_tokenizer.pad_token_id]
    batch = torch.tensor(
        [prompt[0].tolist() + stop + pad * (width - len(stop)), prompt[1].tolist() + pad * (width - len(going)) + going]
    )
    done = criteria(batch, None)
    assert done.dtype == torch.bool and done.tolist() == [True, False]
    assert StoppingCriteriaList([criteria])(batch, None).tolist() == [True, False]


def test_keywords_stopping_criteria_matches_keyword_ids_and_ignores_the_prompt(tiny_tokenizer):
    prompt = torch.tensor([[1] + tiny_tokenizer("cat###", add_special_tokens=False).input_ids])
    criteria = KeywordsStoppingCriteria(["###", "</s>"], tiny_tokenizer, prompt)
    assert criteria(prompt, None).tolist() == [False]  # nothing generated yet
    eos = torch.cat([prompt, torch.tensor([[tiny_tokenizer.eos_token_id]])], dim=1)
    assert criteria(eos, None).tolist() == [True]  # "</s>" by its id (decoding skips it)
