"""The chat engine: template choice, prompts, pictures, streaming equal to batch answers, length limits."""

from __future__ import annotations

import copy

import pytest

from llava.conversation import conv_templates
from llava.eval.generation import GenerationSettings, answer_batch, build_prompt
from llava.serve.chat import (
    ChatInputError,
    ChatSession,
    _without_partial_stop,
    conversation_prompt,
    infer_conv_mode,
    load_chat_model,
    open_image,
    resolve_conv_mode,
    stop_string,
)

GREEDY = GenerationSettings(max_new_tokens=12, temperature=0.0)


@pytest.fixture(scope="module")
def chat_model(tiny_llava_dir):
    return load_chat_model(str(tiny_llava_dir), device="cpu")


@pytest.fixture()
def picture(tmp_path):
    from llava.data.synthetic import draw

    path = tmp_path / "red.png"
    draw("red", "circle").save(path)
    return path


@pytest.mark.parametrize(
    "name, mode",
    [
        ("llava-v1.5-7b", "llava_v1"),
        ("llava-v1.5-7b-okvqa-qlora", "llava_v1"),
        ("llava-llama-2-13b-chat", "llava_llama_2"),
        ("llava-v1.6-mistral-7b", "mistral_instruct"),
        ("llava-v1.6-34b", "chatml_direct"),
        ("llava-mpt-7b", "mpt"),
        ("llava-tiny", "llava_v0"),
    ],
)
def test_template_is_inferred_from_the_name_as_upstream(name, mode):
    assert infer_conv_mode(name) == mode
    assert mode in conv_templates


def test_asked_template_wins_and_an_unknown_one_is_refused():
    assert resolve_conv_mode("llava-v1.5-7b", None) == "llava_v1"
    assert resolve_conv_mode("llava-v1.5-7b", "vicuna_v1") == "vicuna_v1"
    with pytest.raises(ValueError, match="unknown template"):
        resolve_conv_mode("llava-v1.5-7b", "vicuna_v9")


@pytest.mark.parametrize("conv_mode", ["vicuna_v1", "llava_v0", "llava_llama_2", "mpt"])
@pytest.mark.parametrize("start_end", [False, True])
def test_first_turn_prompt_is_the_evaluation_prompt(conv_mode, start_end):
    question = "What colour is the shape?"
    expected = build_prompt(question, conv_templates[conv_mode], True, start_end)
    assert conversation_prompt([(question, None)], conv_mode, True, start_end) == expected


def test_later_turns_keep_the_history_and_the_picture_once():
    prompt = conversation_prompt([("What is it?", "a circle"), ("Which colour?", None)], "vicuna_v1", True)
    assert prompt.count("<image>") == 1
    assert prompt.endswith("USER: <image>\nWhat is it? ASSISTANT: a circle</s>USER: Which colour? ASSISTANT:")


def test_stop_strings_follow_the_separator_style():
    assert stop_string("vicuna_v1") == "</s>"
    assert stop_string("llava_v0") == "###"
    assert _without_partial_stop("a red ##", "###") == "a red "
    assert _without_partial_stop("a red #", "###") == "a red "
    assert _without_partial_stop("a red", "###") == "a red"


def test_unreadable_or_missing_picture_is_a_message_naming_the_file(tmp_path):
    broken = tmp_path / "holiday.jpg"
    broken.write_bytes(b"this is not a picture")
    with pytest.raises(ChatInputError, match=r"Cannot read holiday\.jpg as a picture"):
        open_image(broken)
    with pytest.raises(ChatInputError, match="No such picture"):
        open_image(tmp_path / "gone.png")


def test_stream_grows_to_the_batch_answer_and_joins_the_history(chat_model, picture):
    from llava.mm_utils import process_images

    image = open_image(picture)
    session = ChatSession(chat_model, "vicuna_v1", image)
    prompt = session.prompt("What colour is the shape?")
    pieces = list(session.stream("What colour is the shape?", GREEDY))
    assert len(pieces) > 2, "the reply arrives piece by piece"
    for shorter, longer in zip(pieces, pieces[1:], strict=False):
        assert longer.startswith(shorter.rstrip())
    pixels = process_images([image], chat_model.image_processor, chat_model.model.config)
    expected = answer_batch(chat_model.model, chat_model.tokenizer, [prompt], pixels, GREEDY)[0]
    assert pieces[-1] == expected and expected
    assert session.turns == [("What colour is the shape?", expected)]
    second = session.prompt("And the shape?")
    assert second.count("<image>") == 1 and f"ASSISTANT: {expected}</s>USER: And the shape?" in second


def test_too_long_prompt_is_refused_with_the_numbers_and_new_tokens_fit_the_context(chat_model, picture):
    session = ChatSession(chat_model, "vicuna_v1", open_image(picture))
    # the tiny model reads 512 positions (its tokenizer's limit), not upstream's 2048
    assert chat_model.context_len == 512
    with pytest.raises(ChatInputError, match=r"too long: \d+ tokens \(the picture takes 16\).*at most 512"):
        list(session.stream("word " * 3000, GREEDY))
    assert session.turns == []
    ids, room = session._input_ids("word " * 100, 512)
    length = ids.shape[1] - 1 + chat_model.image_token_count
    assert room == min(512, chat_model.context_len - length)
    with pytest.raises(ChatInputError, match="Type a question"):
        list(session.stream("   ", GREEDY))


def test_stopping_early_stops_generation_and_keeps_no_half_turn(chat_model, picture):
    session = ChatSession(chat_model, "vicuna_v1", open_image(picture))
    stream = session.stream("What colour is the shape?", GenerationSettings(max_new_tokens=200))
    next(stream)
    stream.close()
    assert session.turns == []
    assert not chat_model.lock.locked()


def test_session_copies_share_the_model(chat_model):
    session = ChatSession(chat_model, "vicuna_v1")
    clone = copy.deepcopy(session)
    assert clone.chat_model is chat_model and clone is not session
