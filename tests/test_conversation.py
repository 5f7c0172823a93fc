"""Conversation templates: upstream's prompt strings byte for byte, and the learned character spans."""

from __future__ import annotations

import pytest
from PIL import Image

from llava import conversation as conversation_lib
from llava.conversation import Conversation, SeparatorStyle, conv_templates, template_for_version

USER_SYSTEM = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions."
)
HUMAN_SYSTEM = (
    "A chat between a curious human and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the human's questions."
)
MMTAG_SYSTEM = (
    "A chat between a curious user and an artificial intelligence assistant. The assistant is able to "
    "understand the visual content that the user provides, and assist the user with a variety of tasks "
    "using natural language.The visual content will be provided with the following format: "
    "<Image>visual content</Image>."
)
LLAVA_LLAMA_2_SYSTEM = (
    "You are a helpful language and vision assistant. You are able to understand the visual content "
    "that the user provides, and assist the user with a variety of tasks using natural language."
)
MPT_SYSTEM = (
    "<|im_start|>system\nA conversation between a user and an LLM-based AI assistant. "
    "The assistant gives helpful and honest answers."
)

TWO_ROUNDS = ["<image>\nWhat is it?", "A red cat.", "How many?", "3 cats"]


def render(key: str, messages, **changes) -> Conversation:
    conv = conv_templates[key].copy()
    for name, value in changes.items():
        setattr(conv, name, value)
    for index, message in enumerate(messages):
        conv.append_message(conv.roles[index % 2], message)
    return conv


def learned_texts(conv: Conversation) -> list[str]:
    prompt, spans = conv.get_prompt_and_targets()
    assert prompt == conv.get_prompt()
    return [prompt[start:end] for start, end in spans]


def test_every_upstream_key_is_there():
    upstream_keys = {
        "default",
        "v0",
        "v1",
        "vicuna_v1",
        "llama_2",
        "plain",
        "v0_plain",
        "llava_v0",
        "v0_mmtag",
        "llava_v1",
        "v1_mmtag",
        "llava_llama_2",
        "mpt",
        "mistral_instruct",
        "chatml_direct",
        "mistral_direct",
    }
    assert set(conv_templates) == upstream_keys


@pytest.mark.parametrize(
    "key, style, version, roles, sep, sep2",
    [
        ("default", SeparatorStyle.SINGLE, "Unknown", ("Human", "Assistant"), "###", None),
        ("v0", SeparatorStyle.SINGLE, "Unknown", ("Human", "Assistant"), "###", None),
        ("v1", SeparatorStyle.TWO, "v1", ("USER", "ASSISTANT"), " ", "</s>"),
        ("vicuna_v1", SeparatorStyle.TWO, "v1", ("USER", "ASSISTANT"), " ", "</s>"),
        ("llama_2", SeparatorStyle.LLAMA_2, "llama_v2", ("USER", "ASSISTANT"), "<s>", "</s>"),
        ("plain", SeparatorStyle.PLAIN, "Unknown", ("", ""), "\n", None),
        ("v0_plain", SeparatorStyle.PLAIN, "Unknown", ("", ""), "\n", None),
        ("llava_v0", SeparatorStyle.SINGLE, "Unknown", ("Human", "Assistant"), "###", None),
        ("v0_mmtag", SeparatorStyle.SINGLE, "v0_mmtag", ("Human", "Assistant"), "###", None),
        ("llava_v1", SeparatorStyle.TWO, "v1", ("USER", "ASSISTANT"), " ", "</s>"),
        ("v1_mmtag", SeparatorStyle.TWO, "v1_mmtag", ("USER", "ASSISTANT"), " ", "</s>"),
        ("llava_llama_2", SeparatorStyle.LLAMA_2, "llama_v2", ("USER", "ASSISTANT"), "<s>", "</s>"),
        ("mpt", SeparatorStyle.MPT, "mpt", ("<|im_start|>user\n", "<|im_start|>assistant\n"), "<|im_end|>", None),
        ("mistral_instruct", SeparatorStyle.LLAMA_2, "llama_v2", ("USER", "ASSISTANT"), "", "</s>"),
        (
            "chatml_direct",
            SeparatorStyle.MPT,
            "mpt",
            ("<|im_start|>user\n", "<|im_start|>assistant\n"),
            "<|im_end|>",
            None,
        ),
    ],
)
def test_template_fields_are_upstreams(key, style, version, roles, sep, sep2):
    template = conv_templates[key]
    assert (template.sep_style, template.version, tuple(template.roles), template.sep, template.sep2) == (
        style,
        version,
        roles,
        sep,
        sep2,
    )


def test_default_conversation_is_upstreams_and_template_for_version_follows_upstream_train(monkeypatch):
    # LLaVA 1.2.2.post1: default_conversation = conv_vicuna_v1.
    assert conversation_lib.default_conversation is conv_templates["vicuna_v1"]
    assert template_for_version("llava_llama_2").get_prompt() == conv_templates["llava_llama_2"].get_prompt()
    assert template_for_version("no-such-key").system == USER_SYSTEM  # upstream falls back on vicuna_v1
    monkeypatch.setattr(conversation_lib, "default_conversation", conv_templates["llava_v0"])
    assert template_for_version("v0").system == HUMAN_SYSTEM  # v0 keeps the module default, read now
    assert template_for_version("v0").sep_style == SeparatorStyle.SINGLE


# ------------------------------------------------------------- literal prompts


def test_v1_prompt_literal():
    conv = render("v1", TWO_ROUNDS)
    assert conv.get_prompt() == (
        USER_SYSTEM + " USER: <image>\nWhat is it? ASSISTANT: A red cat.</s>USER: How many? ASSISTANT: 3 cats</s>"
    )
    open_turn = render("v1", ["<image>\nWhat is it?", None])
    assert open_turn.get_prompt() == USER_SYSTEM + " USER: <image>\nWhat is it? ASSISTANT:"


def test_llava_v1_prompt_literal():
    assert render("llava_v1", TWO_ROUNDS).get_prompt() == (
        HUMAN_SYSTEM + " USER: <image>\nWhat is it? ASSISTANT: A red cat.</s>USER: How many? ASSISTANT: 3 cats</s>"
    )


def test_llava_llama_2_prompt_literal():
    assert render("llava_llama_2", TWO_ROUNDS).get_prompt() == (
        "[INST] <<SYS>>\n" + LLAVA_LLAMA_2_SYSTEM + "\n<</SYS>>\n\n<image>\nWhat is it? [/INST] A red cat. </s>"
        "<s>[INST] How many? [/INST] 3 cats </s>"
    )
    assert render("llava_llama_2", ["Hi", None]).get_prompt() == (
        "[INST] <<SYS>>\n" + LLAVA_LLAMA_2_SYSTEM + "\n<</SYS>>\n\nHi [/INST]"
    )


def test_llama_2_prompt_starts_and_ends_as_upstreams():
    prompt = render("llama_2", ["Hi", "Hello."]).get_prompt()
    assert prompt.startswith("[INST] <<SYS>>\nYou are a helpful, respectful and honest assistant. Always answer")
    assert "while being safe.  Your answers" in prompt  # upstream's double space
    assert prompt.endswith("please don't share false information.\n<</SYS>>\n\nHi [/INST] Hello. </s>")


def test_mistral_instruct_has_no_system_block():
    assert render("mistral_instruct", ["Hi", "Hello.", "Bye", None]).get_prompt() == (
        "[INST] Hi [/INST] Hello. </s>[INST] Bye [/INST]"
    )


def test_plain_prompt_literal():
    assert render("plain", ["<image>\nWhat is it?", None]).get_prompt() == "<image>\nWhat is it?\n"
    # Upstream raises a TypeError here (sep2 is None); a missing sep2 renders as nothing.
    assert render("plain", ["<image>", "A red cat."]).get_prompt() == "<image>\nA red cat."


def test_v0_prompts_literal():
    example = conv_templates["v0"].messages[1][1]
    assert render("v0", ["Hi", None]).get_prompt() == (
        HUMAN_SYSTEM + "###Human: What are the key differences between renewable and non-renewable energy sources?"
        "###Assistant: " + example + "###Human: Hi###Assistant:"
    )
    assert render("llava_v0", TWO_ROUNDS[:2]).get_prompt() == (
        HUMAN_SYSTEM + "###Human: <image>\nWhat is it?###Assistant: A red cat.###"
    )
    assert render("v0_mmtag", ["Hi", None]).get_prompt() == MMTAG_SYSTEM + "###Human: Hi###Assistant:"


def test_mpt_prompt_literal():
    assert render("mpt", ["Hi", "Hello.", "Bye", None]).get_prompt() == (
        MPT_SYSTEM + "<|im_end|><|im_start|>user\nHi<|im_end|><|im_start|>assistant\nHello.<|im_end|>"
        "<|im_start|>user\nBye<|im_end|><|im_start|>assistant\n"
    )


def test_empty_message_renders_the_role_tag_only():
    assert render("v1", ["Hi", ""]).get_prompt() == USER_SYSTEM + " USER: Hi ASSISTANT:"


def test_demo_tuple_message_puts_the_image_first():
    image = Image.new("RGB", (4, 4))
    conv = render("v1", [("What <image> is it?", image, "Pad"), "A cat.", "More?", None])
    assert conv.get_prompt() == (
        USER_SYSTEM + " USER: <image>\nWhat  is it? ASSISTANT: A cat.</s>USER: More? ASSISTANT:"
    )
    assert learned_texts(conv) == [" A cat.</s>"]


def test_demo_tuple_message_with_mmtag_inserts_the_image_exchange():
    image = Image.new("RGB", (4, 4))
    conv = render("v1_mmtag", [("<image>\nWhat is it?", image, "Default"), None])
    assert conv.get_prompt() == (
        MMTAG_SYSTEM + " USER: <Image><image></Image> ASSISTANT: Received.</s>USER: What is it? ASSISTANT:"
    )
    assert learned_texts(conv) == []  # the inserted exchange belongs to the template


def test_llama_2_strips_the_leading_sep_with_str_lstrip():
    # Upstream calls ret.lstrip(sep): a character set, not a prefix. With a sep
    # made of "[" and "X", the "[" of "[INST]" goes too.
    conv = render("llava_llama_2", ["Hi", "Yo."], sep="X[", system="")
    assert conv.get_prompt() == "INST] Hi [/INST] Yo. </s>"
    assert learned_texts(conv) == [" Yo. </s>"]


def test_llama_2_first_message_must_be_a_user_message():
    with pytest.raises(ValueError, match="first message must not be empty"):
        render("llava_llama_2", [None]).get_prompt()
    conv = conv_templates["llava_llama_2"].copy()
    conv.append_message("ASSISTANT", "Hi")
    with pytest.raises(ValueError, match="must come from 'USER'"):
        conv.get_prompt()


def test_unknown_style_is_an_error():
    conv = render("v1", ["Hi"], sep_style="nonsense")
    with pytest.raises(ValueError, match="Invalid style"):
        conv.get_prompt()


# ------------------------------------------------------------ learned spans


@pytest.mark.parametrize(
    "key, expected",
    [
        ("v1", [" A red cat.</s>", " 3 cats</s>"]),
        ("vicuna_v1", [" A red cat.</s>", " 3 cats</s>"]),
        ("llava_v1", [" A red cat.</s>", " 3 cats</s>"]),
        ("llava_llama_2", [" A red cat. </s>", " 3 cats </s>"]),
        ("llama_2", [" A red cat. </s>", " 3 cats </s>"]),
        ("llava_v0", [" A red cat.###", " 3 cats###"]),
        ("v0_mmtag", [" A red cat.###", " 3 cats###"]),
        ("mpt", ["A red cat.<|im_end|>", "3 cats<|im_end|>"]),
        ("plain", ["A red cat.", "3 cats"]),
    ],
)
def test_learned_spans_per_style(key, expected):
    assert learned_texts(render(key, TWO_ROUNDS)) == expected
    assert learned_texts(render(key, TWO_ROUNDS[:3] + [None])) == expected[:1]


def test_plain_with_shifted_separators_is_upstreams_pretraining_text():
    conv = render("plain", ["<image>", "A red cat."], sep="", sep2="\n")
    assert conv.get_prompt_and_targets() == ("<image>A red cat.\n", [(7, 18)])


def test_template_example_messages_are_not_learned():
    conv = render("v0", ["Hi", "Hello."])
    assert learned_texts(conv) == [" Hello.###"]
    conv.offset = 0
    assert len(learned_texts(conv)) == 2


def test_copy_is_independent_and_templates_stay_empty():
    conv = conv_templates["v1"].copy()
    conv.append_message("USER", "Hi")
    assert conv.messages == [["USER", "Hi"]]
    assert conv_templates["v1"].messages == ()
    again = conv.copy()
    again.append_message("ASSISTANT", "Yo")
    assert len(conv.messages) == 1
    assert again.dict()["messages"] == [["USER", "Hi"], ["ASSISTANT", "Yo"]]


def test_get_images_prepares_demo_images_as_upstream():
    import base64
    from io import BytesIO

    from PIL import Image

    conv = conv_templates["vicuna_v1"].copy()
    wide = Image.new("RGB", (2000, 1000), (255, 0, 0))
    conv.append_message(conv.roles[0], ("<image>\nWhat?", wide, "Default"))
    conv.append_message(conv.roles[1], "red")
    conv.append_message(conv.roles[0], ("And?", Image.new("RGB", (100, 50)), "Pad"))
    conv.append_message(conv.roles[1], None)
    conv.append_message(conv.roles[0], ("Small", Image.new("RGB", (40, 30)), "Resize"))
    pil = conv.get_images(return_pil=True)
    assert [image.size for image in pil] == [(1344, 672), (100, 100), (336, 336)]  # only large ones shrink
    assert pil[1].getpixel((50, 5)) == (122, 116, 104)  # upstream's pad colour
    encoded = conv.get_images()
    assert Image.open(BytesIO(base64.b64decode(encoded[0]))).size == (1344, 672)
    jpeg = conv.process_image(Image.new("RGB", (40, 30)), "Default", image_format="JPEG")
    assert Image.open(BytesIO(base64.b64decode(jpeg))).format == "JPEG"


def test_get_images_rejects_an_unknown_mode():
    from PIL import Image

    conv = conv_templates["vicuna_v1"].copy()
    conv.append_message(conv.roles[0], ("x", Image.new("RGB", (4, 4)), "Stretch"))
    with pytest.raises(ValueError, match="Stretch"):
        conv.get_images()
