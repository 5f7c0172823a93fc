"""llava/eval/generation.py's prompt builder: one rendering for training, evaluation and answering."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from llava.conversation import conv_templates, template_for_version
from llava.eval.generation import build_prompt, image_turn, open_prompt
from llava.train.data import conversation_prompt, preprocess_multimodal


def test_image_turn_moves_the_image_to_the_front():
    template = template_for_version("v1")
    assert image_turn("What colour? <image> ", template) == "<image>\nWhat colour?"
    assert image_turn("<image>\nWhat?", template, mm_use_im_start_end=True) == "<im_start><image><im_end>\nWhat?"
    assert image_turn("no picture here", template) == "no picture here"


def test_an_mmtag_template_wraps_the_image():
    mmtag = next(key for key in conv_templates if "mmtag" in conv_templates[key].version)
    assert image_turn("<image>\nWhat?", conv_templates[mmtag]) == "<Image><image></Image>\nWhat?"


@pytest.mark.parametrize("start_end", [False, True])
def test_training_formats_image_turns_with_the_same_function(start_end):
    template = template_for_version("v1")
    turns = [{"from": "human", "value": "Which shape? <image>"}, {"from": "gpt", "value": "circle"}]
    data_args = SimpleNamespace(is_multimodal=True, mm_use_im_start_end=start_end)
    formatted = preprocess_multimodal([[dict(turn) for turn in turns]], data_args, template)[0]
    assert [turn["value"] for turn in formatted] == [image_turn(turn["value"], template, start_end) for turn in turns]


def test_answering_prompt_is_the_training_prompt_up_to_the_answer():
    template = template_for_version("v1")
    prompt = build_prompt("Which shape?", template)
    assert prompt == open_prompt("<image>\nWhich shape?", template)
    trained, _ = conversation_prompt(
        [{"from": "human", "value": "<image>\nWhich shape?"}, {"from": "gpt", "value": "circle"}], template
    )
    assert trained.startswith(prompt) and trained[len(prompt) :].lstrip().startswith("circle")
