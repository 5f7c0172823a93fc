"""Tokenizer files upstream's slow SentencePiece tokenizer needs, written beside today's."""

from __future__ import annotations

import json

from llava.model.tokenizer_files import UPSTREAM_TOKENIZER_FILES, save_tokenizer

PROMPT = (
    "A chat between a curious user and an artificial intelligence assistant. USER: <image>\nWhat colour "
    "is the shape? ASSISTANT: red</s>USER: How many? ASSISTANT:"
)


def test_saved_folder_has_upstreams_files_and_settings(tiny_tokenizer, tiny_tokenizer_dir, tmp_path):
    tiny_tokenizer.add_tokens(["<im_patch>"], special_tokens=True)
    save_tokenizer(tiny_tokenizer, tmp_path)
    for name in UPSTREAM_TOKENIZER_FILES:
        assert (tmp_path / name).exists(), name
    assert (tmp_path / "tokenizer.model").read_bytes() == (tiny_tokenizer_dir / "tokenizer.model").read_bytes()
    special = json.loads((tmp_path / "special_tokens_map.json").read_text())
    assert special == {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<unk>"}
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert config["tokenizer_class"] == "LlamaTokenizer"
    assert (config["add_bos_token"], config["add_eos_token"], config["legacy"]) == (True, False, False)
    assert (config["padding_side"], config["model_max_length"]) == ("right", 512)
    patch_id = str(tiny_tokenizer.convert_tokens_to_ids("<im_patch>"))
    assert config["added_tokens_decoder"][patch_id]["content"] == "<im_patch>"


def test_the_sentencepiece_files_alone_tokenize_as_today(tiny_tokenizer, tmp_path):
    """Without tokenizer.json the tokenizer is rebuilt from tokenizer.model + config, as the slow one is."""
    from transformers import AutoTokenizer

    save_tokenizer(tiny_tokenizer, tmp_path)
    (tmp_path / "tokenizer.json").unlink()
    rebuilt = AutoTokenizer.from_pretrained(str(tmp_path), use_fast=False)
    assert rebuilt(PROMPT).input_ids == tiny_tokenizer(PROMPT).input_ids
    assert rebuilt.pad_token == "<unk>"


def test_model_file_comes_from_a_source_folder_when_the_tokenizer_has_none(
    tiny_tokenizer, tiny_tokenizer_dir, tmp_path
):
    first = tmp_path / "first"
    save_tokenizer(tiny_tokenizer, first)
    (first / "tokenizer.model").unlink()
    from transformers import AutoTokenizer

    without = AutoTokenizer.from_pretrained(str(first))
    out = tmp_path / "out"
    save_tokenizer(without, out, sources=(str(tiny_tokenizer_dir),))
    assert (out / "tokenizer.model").read_bytes() == (tiny_tokenizer_dir / "tokenizer.model").read_bytes()
