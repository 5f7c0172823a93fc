"""Training data: golden label masks per template, multimodal preprocessing, dataset and collator."""

from __future__ import annotations

import copy
import doctest
import logging

import pytest
import torch

from llava import conversation as conversation_lib
from llava.constants import IGNORE_INDEX, IMAGE_TOKEN_INDEX
from llava.conversation import SeparatorStyle, conv_templates
from llava.mm_utils import expand2square, tokenizer_image_token
from llava.train import data as data_module
from llava.train.data import (
    DataCollatorForSupervisedDataset,
    DatasetError,
    LazySupervisedDataset,
    SelectedEntries,
    make_supervised_data_module,
    preprocess,
    preprocess_multimodal,
)

TWO_ROUNDS = [
    {"from": "human", "value": "What is this?\n<image>"},
    {"from": "gpt", "value": "A red cat."},
    {"from": "human", "value": "How many?"},
    {"from": "gpt", "value": "3 cats"},
]


def multimodal(turns, data_args, template):
    return preprocess_multimodal([copy.deepcopy(turns)], data_args, template)[0]


def learned_pieces(tokenizer, input_ids, labels) -> list[str]:
    """The learned tokens, one string per contiguous run (SentencePiece pieces joined)."""
    runs, current = [], []
    for token, label in zip(input_ids, labels, strict=True):
        if label != IGNORE_INDEX:
            assert label == token
            current.append(token)
        elif current:
            runs.append(current)
            current = []
    if current:
        runs.append(current)
    return ["".join(tokenizer.convert_ids_to_tokens(run)) for run in runs]


def build(tokenizer, turns, key, make_data_args, has_image=True):
    template = conv_templates[key]
    if has_image:
        turns = multimodal(turns, make_data_args(), template)
    out = preprocess([turns], tokenizer, has_image=has_image, conversation_template=template, sample_ids=["s1"])
    return out["input_ids"][0].tolist(), out["labels"][0].tolist()


def upstream_round_arithmetic(prompt, tokenizer, template, has_image, legacy_fix=True):
    """Upstream's preprocess_v1 / preprocess_llama_2 masking, re-implemented for comparison.

    Returns ``(labels, mismatch)``; on a mismatch upstream masks every label.
    ``legacy_fix``: upstream 1.2.x's correction for non-legacy tokenizers
    (rounds after the first count one token less; preprocess_v1 only).
    """

    def length(text):
        return len(tokenizer_image_token(text, tokenizer)) if has_image else len(tokenizer(text).input_ids)

    input_ids = tokenizer_image_token(prompt, tokenizer) if has_image else tokenizer(prompt).input_ids
    labels = list(input_ids)
    total = sum(token != tokenizer.pad_token_id for token in input_ids)
    separator = template.sep + template.roles[1] + ": " if template.sep_style == SeparatorStyle.TWO else "[/INST] "
    position = 1
    labels[:1] = [IGNORE_INDEX]
    for number, round_text in enumerate(prompt.split(template.sep2)):
        if round_text == "":
            break
        parts = round_text.split(separator)
        if len(parts) != 2:
            break
        round_len, instruction_len = length(round_text), length(parts[0] + separator) - 2
        if legacy_fix and number != 0 and template.sep_style == SeparatorStyle.TWO:
            round_len, instruction_len = round_len - 1, instruction_len - 1
        labels[position : position + instruction_len] = [IGNORE_INDEX] * len(
            labels[position : position + instruction_len]
        )
        position += round_len
    labels[position:] = [IGNORE_INDEX] * len(labels[position:])
    return labels, position != total


# ------------------------------------------------------------ golden masks


@pytest.mark.parametrize(
    "key, expected",
    [
        ("v1", ["▁A▁red▁cat.</s>", "▁3▁cats</s>"]),
        ("vicuna_v1", ["▁A▁red▁cat.</s>", "▁3▁cats</s>"]),
        ("llava_v1", ["▁A▁red▁cat.</s>", "▁3▁cats</s>"]),
        ("llava_llama_2", ["▁A▁red▁cat.▁</s>", "▁3▁cats▁</s>"]),
        ("llava_v0", ["▁A▁red▁cat.###", "▁3▁cats###"]),
        ("mpt", ["A▁red▁cat.<<0x7C>im_end<0x7C>>", "3▁cats<<0x7C>im_end<0x7C>>"]),
    ],
)
def test_golden_learned_tokens(tiny_tokenizer, make_data_args, key, expected):
    input_ids, labels = build(tiny_tokenizer, TWO_ROUNDS, key, make_data_args)
    assert learned_pieces(tiny_tokenizer, input_ids, labels) == expected
    # BOS, image token and everything before the first answer are masked.
    assert input_ids[0] == tiny_tokenizer.bos_token_id and labels[0] == IGNORE_INDEX
    assert input_ids.count(IMAGE_TOKEN_INDEX) == 1
    assert labels[input_ids.index(IMAGE_TOKEN_INDEX)] == IGNORE_INDEX
    assert input_ids == tokenizer_image_token(
        _prompt(TWO_ROUNDS, key, make_data_args), tiny_tokenizer
    )  # the ids are exactly upstream's


def _prompt(turns, key, make_data_args):
    template = conv_templates[key]
    return data_module.conversation_prompt(multimodal(turns, make_data_args(), template), template)[0]


def masked_and_learned_runs(tokenizer, input_ids, labels) -> list[tuple[str, str]]:
    """``("mask" | "learn", pieces)`` for each run of masked / learned tokens (image token shown as <IMG>)."""
    runs: list[tuple[str, list[str]]] = []
    for token, label in zip(input_ids, labels, strict=True):
        state = "mask" if label == IGNORE_INDEX else "learn"
        piece = "<IMG>" if token == IMAGE_TOKEN_INDEX else tokenizer.convert_ids_to_tokens(token)
        if runs and runs[-1][0] == state:
            runs[-1][1].append(piece)
        else:
            runs.append((state, [piece]))
    return [(state, "".join(pieces)) for state, pieces in runs]


def test_golden_v1_every_token(tiny_tokenizer, make_data_args):
    input_ids, labels = build(tiny_tokenizer, TWO_ROUNDS, "v1", make_data_args)
    system = (
        "▁A▁chat▁between▁a▁curious▁user▁and▁an▁artificial▁intelligence▁assistant."
        "▁The▁assistant▁gives▁helpful,▁detailed,▁and▁polite▁answers▁to▁the▁user's▁questions."
    )
    assert masked_and_learned_runs(tiny_tokenizer, input_ids, labels) == [
        ("mask", "<s>" + system + "▁USER:▁<IMG>▁<0x0A>What▁is▁this?▁ASSISTANT:"),
        ("learn", "▁A▁red▁cat.</s>"),
        ("mask", "USER:▁How▁many?▁ASSISTANT:"),
        ("learn", "▁3▁cats</s>"),
    ]
    pieces = tiny_tokenizer.convert_ids_to_tokens(
        [token for token, label in zip(input_ids, labels, strict=True) if label != IGNORE_INDEX]
    )
    assert pieces == ["▁A", "▁", "re", "d", "▁c", "at", ".", "</s>", "▁", "3", "▁c", "at", "s", "</s>"]


def test_golden_llava_llama_2_every_token(tiny_tokenizer, make_data_args):
    input_ids, labels = build(tiny_tokenizer, TWO_ROUNDS, "llava_llama_2", make_data_args)
    runs = masked_and_learned_runs(tiny_tokenizer, input_ids, labels)
    assert [state for state, _ in runs] == ["mask", "learn", "mask", "learn"]
    assert runs[0][1].startswith("<s>▁[INST]▁<<SYS>><0x0A>You▁are▁a▁helpful▁language")
    assert runs[0][1].endswith("<</SYS>><0x0A><0x0A><IMG>▁<0x0A>What▁is▁this?▁[/INST]")
    assert runs[1:] == [
        ("learn", "▁A▁red▁cat.▁</s>"),
        ("mask", "<s>[INST]▁How▁many?▁[/INST]"),
        ("learn", "▁3▁cats▁</s>"),
    ]


@pytest.mark.parametrize("key", ["v1", "vicuna_v1", "llava_v1", "llava_llama_2"])
@pytest.mark.parametrize("has_image", [True, False])
def test_labels_equal_upstreams_where_upstream_has_no_mismatch(tiny_tokenizer, make_data_args, key, has_image):
    samples = [
        TWO_ROUNDS,
        TWO_ROUNDS[:2],
        [{"from": "human", "value": "<image>\n12 + 7?"}, {"from": "gpt", "value": "19"}],
        [{"from": "gpt", "value": "dropped"}] + TWO_ROUNDS,
    ]
    template = conv_templates[key]
    for turns in samples:
        if not has_image:
            turns = [{**turn, "value": turn["value"].replace("<image>", "").strip()} for turn in turns]
        input_ids, labels = build(tiny_tokenizer, turns, key, make_data_args, has_image)
        prompt = data_module.conversation_prompt(
            multimodal(turns, make_data_args(), template) if has_image else turns, template
        )[0]
        upstream_labels, mismatch = upstream_round_arithmetic(prompt, tiny_tokenizer, template, has_image)
        assert not mismatch, "this sample should not hit upstream's mismatch"
        assert labels == upstream_labels


def test_two_rounds_where_upstreams_old_arithmetic_mismatches_still_learn(tiny_tokenizer, make_data_args):
    # Without upstream 1.2's correction, the second round of a non-legacy tokenizer
    # is off by one: upstream prints "tokenization mismatch" and masks everything.
    template = conv_templates["v1"]
    turns = multimodal(TWO_ROUNDS, make_data_args(), template)
    prompt = data_module.conversation_prompt(turns, template)[0]
    upstream_labels, mismatch = upstream_round_arithmetic(prompt, tiny_tokenizer, template, True, legacy_fix=False)
    assert mismatch
    input_ids, labels = build(tiny_tokenizer, TWO_ROUNDS, "v1", make_data_args)
    assert learned_pieces(tiny_tokenizer, input_ids, labels) == ["▁A▁red▁cat.</s>", "▁3▁cats</s>"]


def test_golden_plain(tiny_tokenizer, make_data_args):
    turns = [{"from": "human", "value": "Describe it.\n<image>"}, {"from": "gpt", "value": "3 red cats"}]
    input_ids, labels = build(tiny_tokenizer, turns, "plain", make_data_args)
    assert input_ids[:2] == [tiny_tokenizer.bos_token_id, IMAGE_TOKEN_INDEX]
    assert labels[:2] == [IGNORE_INDEX, IGNORE_INDEX]
    # Upstream's preprocess_plain: "<image>" + caption + "\n", all after BOS+image learned.
    assert input_ids == tokenizer_image_token("<image>3 red cats\n", tiny_tokenizer)
    assert labels[2:] == input_ids[2:]
    assert learned_pieces(tiny_tokenizer, input_ids, labels) == ["▁3▁red▁cats<0x0A>"]


def test_plain_needs_one_image_turn_and_a_caption(tiny_tokenizer, make_data_args):
    with pytest.raises(DatasetError, match="sample 's1': the plain template"):
        build(tiny_tokenizer, TWO_ROUNDS, "plain", make_data_args)


def test_golden_single_v0_style(tiny_tokenizer, make_data_args):
    # Deviation from upstream: v0 renders with the SINGLE template (upstream used a legacy renderer).
    input_ids, labels = build(tiny_tokenizer, TWO_ROUNDS, "v0", make_data_args)
    assert learned_pieces(tiny_tokenizer, input_ids, labels) == ["▁A▁red▁cat.###", "▁3▁cats###"]
    prompt = _prompt(TWO_ROUNDS, "v0", make_data_args)
    assert "renewable" not in prompt  # the template's example exchange is not part of training prompts
    assert prompt.endswith(
        "###Human: <image>\nWhat is this?###Assistant: A red cat.###Human: How many?###Assistant: 3 cats###"
    )


def test_leading_gpt_turn_is_dropped(tiny_tokenizer, make_data_args):
    with_leading = [{"from": "gpt", "value": "Hello!"}] + TWO_ROUNDS
    assert build(tiny_tokenizer, with_leading, "v1", make_data_args) == build(
        tiny_tokenizer, TWO_ROUNDS, "v1", make_data_args
    )


@pytest.mark.parametrize(
    "turns, message",
    [
        (
            [{"from": "human", "value": "a"}, {"from": "human", "value": "b"}],
            "turn 1 is from 'human' but 'gpt' was expected",
        ),
        ([{"from": "human", "value": "a"}, {"from": "bot", "value": "b"}], "turn 1 is from 'bot'"),
        ([{"from": "human"}], "turn 0 must be an object"),
        ([], "'conversations' must be a non-empty list"),
    ],
)
def test_bad_conversations_raise_naming_the_sample(tiny_tokenizer, turns, message):
    with pytest.raises(DatasetError, match="sample 's1'") as raised:
        preprocess([turns], tiny_tokenizer, conversation_template="v1", sample_ids=["s1"])
    assert message in str(raised.value)


def test_text_only_sample_is_truncated_like_upstream(tiny_tokenizer):
    turns = [{"from": "human", "value": "What is <image> here?"}, {"from": "gpt", "value": "red"}]
    full = preprocess([turns], tiny_tokenizer, conversation_template="v1")
    assert IMAGE_TOKEN_INDEX not in full["input_ids"][0].tolist()  # "<image>" is plain text without an image
    tiny_tokenizer.model_max_length = 10
    cut = preprocess([turns], tiny_tokenizer, conversation_template="v1")
    assert cut["input_ids"][0].tolist() == full["input_ids"][0].tolist()[:10]


def test_sample_without_learnable_tokens_is_logged(tiny_tokenizer, caplog):
    with caplog.at_level(logging.WARNING, logger="llava.train.data"):
        out = preprocess(
            [[{"from": "human", "value": "Hi"}]], tiny_tokenizer, conversation_template="v1", sample_ids=["q7"]
        )
    assert (out["labels"][0] == IGNORE_INDEX).all()
    assert "sample 'q7' has no learnable tokens" in caplog.text


# ---------------------------------------------------------- multimodal


@pytest.mark.parametrize(
    "value, options, key, expected",
    [
        ("What is this?\n<image>", {}, "v1", "<image>\nWhat is this?"),
        ("  <image>  What?  ", {}, "v1", "<image>\nWhat?"),
        ("<image>", {}, "v1", "<image>"),
        ("A <image> B <image>", {}, "v1", "<image>\nA  B"),
        ("What?\n<image>", {"mm_use_im_start_end": True}, "v1", "<im_start><image><im_end>\nWhat?"),
        ("What?\n<image>", {}, "v1_mmtag", "<Image><image></Image>\nWhat?"),
        (
            "What?\n<image>",
            {"mm_use_im_start_end": True},
            "v0_mmtag",
            "<Image><im_start><image><im_end></Image>\nWhat?",
        ),
        ("What?\n<image>", {"is_multimodal": False}, "v1", "What?\n<image>"),
        ("  no image  ", {}, "v1", "  no image  "),
    ],
)
def test_preprocess_multimodal_variants(make_data_args, value, options, key, expected):
    sources = [[{"from": "human", "value": value}, {"from": "gpt", "value": "x"}]]
    result = preprocess_multimodal(sources, make_data_args(**options), conv_templates[key])
    assert result is sources  # in place, as upstream
    assert sources[0][0]["value"] == expected
    assert sources[0][1]["value"] == "x"


def test_preprocess_multimodal_reads_the_default_template_at_call_time(make_data_args, monkeypatch):
    sources = [[{"from": "human", "value": "What?\n<image>"}]]
    monkeypatch.setattr(conversation_lib, "default_conversation", conv_templates["v1_mmtag"])
    preprocess_multimodal(sources, make_data_args())
    assert sources[0][0]["value"] == "<Image><image></Image>\nWhat?"


def test_global_default_conversation_path_gives_upstreams_samples(
    tiny_tokenizer, make_data_args, write_image, write_json, tmp_path, monkeypatch
):
    # A researcher reproducing upstream's train(): set the global, pad = unk, build the data module.
    write_image(tmp_path / "images" / "cat.png")
    path = write_json(tmp_path / "train.json", [{"id": "1", "image": "cat.png", "conversations": TWO_ROUNDS}])
    monkeypatch.setattr(conversation_lib, "default_conversation", conv_templates["llava_llama_2"])
    module = make_supervised_data_module(tiny_tokenizer, make_data_args(data_path=str(path)))
    item = module["train_dataset"][0]
    expected = build(tiny_tokenizer, TWO_ROUNDS, "llava_llama_2", make_data_args)
    assert (item["input_ids"].tolist(), item["labels"].tolist()) == expected
    assert module["eval_dataset"] is None
    assert isinstance(module["data_collator"], DataCollatorForSupervisedDataset)


# --------------------------------------------------------------- dataset


@pytest.fixture()
def dataset_file(tmp_path, write_image, write_json):
    write_image(tmp_path / "images" / "wide.png", size=(40, 20), color=(250, 0, 0))
    write_image(tmp_path / "images" / "sub" / "tall.jpg", size=(10, 30), color=(0, 0, 250))
    records = [
        {"id": "a", "image": "wide.png", "conversations": TWO_ROUNDS},
        {"id": "b", "conversations": [{"from": "human", "value": "Say hi"}, {"from": "gpt", "value": "hi there"}]},
        {
            "id": "c",
            "image": "sub/tall.jpg",
            "question_id": 9,
            "conversations": [{"from": "human", "value": "<image>\nColour?"}, {"from": "gpt", "value": "blue"}],
        },
    ]
    return write_json(tmp_path / "train.json", records)


def test_dataset_items_with_pad_aspect_ratio(tiny_tokenizer, make_data_args, dataset_file, image_processor, tmp_path):
    from PIL import Image

    dataset = LazySupervisedDataset(str(dataset_file), tiny_tokenizer, make_data_args(image_aspect_ratio="pad"), "v1")
    assert len(dataset) == 3
    item = dataset[0]
    assert set(item) == {"input_ids", "labels", "image"}
    assert item["image"].shape == (3, 32, 32) and item["image"].dtype == torch.float32
    mean = tuple(int(x * 255) for x in image_processor.image_mean)
    with Image.open(tmp_path / "images" / "wide.png") as image:
        expected = image_processor.preprocess(expand2square(image.convert("RGB"), mean), return_tensors="pt")
    torch.testing.assert_close(item["image"], expected["pixel_values"][0])
    assert learned_pieces(tiny_tokenizer, item["input_ids"].tolist(), item["labels"].tolist()) == [
        "▁A▁red▁cat.</s>",
        "▁3▁cats</s>",
    ]
    assert dataset[2]["image"].shape == (3, 32, 32)


def test_dataset_square_differs_from_pad(tiny_tokenizer, make_data_args, dataset_file):
    square = LazySupervisedDataset(str(dataset_file), tiny_tokenizer, make_data_args(), "v1")[0]["image"]
    padded = LazySupervisedDataset(str(dataset_file), tiny_tokenizer, make_data_args(image_aspect_ratio="pad"), "v1")[
        0
    ]["image"]
    assert not torch.allclose(square, padded)


def test_text_only_record_in_multimodal_dataset_gets_a_zero_image(tiny_tokenizer, make_data_args, dataset_file):
    item = LazySupervisedDataset(str(dataset_file), tiny_tokenizer, make_data_args(), "v1")[1]
    assert torch.equal(item["image"], torch.zeros(3, 32, 32))
    assert IMAGE_TOKEN_INDEX not in item["input_ids"].tolist()
    text_model = LazySupervisedDataset(str(dataset_file), tiny_tokenizer, make_data_args(is_multimodal=False), "v1")
    assert "image" not in text_model[1]


def test_lengths_and_modality_lengths(tiny_tokenizer, make_data_args, dataset_file):
    dataset = LazySupervisedDataset(str(dataset_file), tiny_tokenizer, make_data_args(), "v1")
    words = [4 + 3 + 2 + 2, 2 + 2, 2 + 1]  # "What is this?\n<image>" is 4 words (split on whitespace)
    assert dataset.lengths == [words[0] + 128, words[1], words[2] + 128]
    assert dataset.modality_lengths == [words[0], -words[1], words[2]]
    assert dataset.lengths is dataset.lengths  # computed once


def test_dataset_errors_name_file_entry_id_and_image(tiny_tokenizer, make_data_args, tmp_path, write_json):
    path = write_json(
        tmp_path / "bad.json",
        [
            {"id": "ok", "conversations": TWO_ROUNDS[:2]},
            {"id": "gone", "image": "missing.png", "conversations": TWO_ROUNDS},
            {"id": "twice", "conversations": [{"from": "human", "value": "a"}, {"from": "human", "value": "b"}]},
        ],
    )
    dataset = LazySupervisedDataset(str(path), tiny_tokenizer, make_data_args(), "v1")
    with pytest.raises(DatasetError) as raised:
        dataset[1]
    message = str(raised.value)
    assert str(path) in message and "entry 1 (id 'gone')" in message and "missing.png" in message
    with pytest.raises(DatasetError, match=r"entry 2 \(id 'twice'\): turn 1 is from 'human'"):
        dataset[2]


def test_bad_json_file_says_where(tiny_tokenizer, make_data_args, tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('[\n  {"id": "1",\n   "conversations": [}\n]\n', encoding="utf-8")
    with pytest.raises(DatasetError, match=r"broken.json is not well-formed JSON: .* \(line 3, column 22"):
        LazySupervisedDataset(str(path), tiny_tokenizer, make_data_args(), "v1")
    path.write_text('{"id": "1"}', encoding="utf-8")
    with pytest.raises(DatasetError, match="must hold a JSON list of records; found a dict"):
        LazySupervisedDataset(str(path), tiny_tokenizer, make_data_args(), "v1")


def test_dataset_from_selected_entries_keeps_file_positions(tiny_tokenizer, make_data_args, tmp_path):
    entries = SelectedEntries(
        [{"id": "x", "image": "nope.png", "conversations": TWO_ROUNDS}], [41], str(tmp_path / "orig.json")
    )
    module = make_supervised_data_module(tiny_tokenizer, make_data_args(data_path=None), "v1", entries=entries)
    dataset = module["train_dataset"]
    assert len(dataset) == 1 and dataset.data_path.endswith("orig.json")
    with pytest.raises(DatasetError, match=r"orig.json, entry 41 \(id 'x'\): cannot read image"):
        dataset[0]


def test_dataset_counts_samples_without_learnable_tokens(tiny_tokenizer, make_data_args, tmp_path, write_json, caplog):
    path = write_json(tmp_path / "t.json", [{"id": "q", "conversations": [{"from": "human", "value": "Hi"}]}])
    dataset = LazySupervisedDataset(str(path), tiny_tokenizer, make_data_args(is_multimodal=False), "v1")
    with caplog.at_level(logging.WARNING, logger="llava.train.data"):
        dataset[0]
        dataset[0]
    assert dataset.num_unlearnable_samples == 2
    assert "entry 0 (id 'q') has no learnable tokens" in caplog.text


# -------------------------------------------------------------- collator


def test_collator_docstring_example():
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    for test in finder.find(
        DataCollatorForSupervisedDataset, "DataCollatorForSupervisedDataset", globs=dict(vars(data_module))
    ):
        runner.run(test)
    assert runner.summarize(verbose=False).failed == 0
    assert runner.summarize(verbose=False).attempted >= 5


def test_collator_pads_truncates_and_stacks(tiny_tokenizer):
    tiny_tokenizer.model_max_length = 4
    collator = DataCollatorForSupervisedDataset(tiny_tokenizer)
    batch = collator(
        [
            {
                "input_ids": torch.tensor([1, 5, 6, 7, 8, 9]),
                "labels": torch.tensor([-100, -100, 6, 7, 8, 9]),
                "image": torch.ones(3, 4, 4),
            },
            {"input_ids": torch.tensor([1, 5]), "labels": torch.tensor([-100, 5]), "image": torch.zeros(3, 4, 4)},
        ]
    )
    assert batch["input_ids"].tolist() == [[1, 5, 6, 7], [1, 5, 0, 0]]
    assert batch["labels"].tolist() == [[-100, -100, 6, 7], [-100, 5, -100, -100]]
    assert batch["attention_mask"].tolist() == [[True] * 4, [True, True, False, False]]
    assert batch["images"].shape == (2, 3, 4, 4)


def test_collator_keeps_images_of_different_shapes_as_a_list(tiny_tokenizer):
    collator = DataCollatorForSupervisedDataset(tiny_tokenizer)
    batch = collator(
        [
            {"input_ids": torch.tensor([1]), "labels": torch.tensor([-100]), "image": torch.ones(3, 4, 4)},
            {"input_ids": torch.tensor([1]), "labels": torch.tensor([-100]), "image": torch.ones(3, 8, 8)},
        ]
    )
    assert isinstance(batch["images"], list) and [image.shape[-1] for image in batch["images"]] == [4, 8]
    no_images = collator([{"input_ids": torch.tensor([1]), "labels": torch.tensor([-100])}])
    assert "images" not in no_images


def test_collator_needs_a_pad_token(tiny_tokenizer):
    tiny_tokenizer.pad_token = None
    with pytest.raises(ValueError, match="pad_token = tokenizer.unk_token"):
        DataCollatorForSupervisedDataset(tiny_tokenizer)(
            [{"input_ids": torch.tensor([1]), "labels": torch.tensor([1])}]
        )


def test_dataset_and_collator_make_a_batch(tiny_tokenizer, make_data_args, dataset_file):
    module = make_supervised_data_module(tiny_tokenizer, make_data_args(data_path=str(dataset_file)), "v1")
    dataset, collator = module["train_dataset"], module["data_collator"]
    batch = collator([dataset[i] for i in range(len(dataset))])
    assert batch["input_ids"].shape[0] == 3 and batch["images"].shape == (3, 3, 32, 32)
    assert (batch["labels"] != IGNORE_INDEX).sum() > 0
