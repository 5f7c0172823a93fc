"""Preflight: every problem kind is found, named and counted, all at once; skipping; the CLI."""

from __future__ import annotations

import json
import logging

import pytest

from llava.conversation import conv_templates
from llava.train import preflight as preflight_module
from llava.train.data import LazySupervisedDataset, SelectedEntries
from llava.train.preflight import PROBLEM_KINDS, PreflightError, main, run_preflight

GOOD = [{"from": "human", "value": "<image>\nWhat colour?"}, {"from": "gpt", "value": "red"}]


def good(sample_id: str, image: str = "ok.png") -> dict:
    return {"id": sample_id, "image": image, "conversations": [dict(turn) for turn in GOOD]}


@pytest.fixture()
def folder(tmp_path, write_image):
    write_image(tmp_path / "images" / "ok.png")
    (tmp_path / "images" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")
    return tmp_path


def check(folder, tokenizer, records, **options):
    path = folder / "train.json"
    path.write_text(json.dumps(records), encoding="utf-8")
    settings = dict(conversation_template="v1", model_max_length=512, num_image_tokens=16)
    settings.update(options)
    return run_preflight(str(path), str(folder / "images"), tokenizer, **settings)


# One record per entry-level problem kind; (kind, record, text the message must hold).
CASES = [
    ("entry_not_object", ["not", "a", "dict"], "must be a JSON object"),
    ("missing_conversations", {"id": "m", "image": "ok.png"}, "'conversations' must be a non-empty list"),
    (
        "bad_turn",
        {"id": "t", "conversations": [{"from": "human"}, {"from": "gpt", "value": "x"}]},
        "turn 0 must be an object",
    ),
    (
        "bad_role",
        {"id": "r", "conversations": [{"from": "user", "value": "hi"}, {"from": "gpt", "value": "x"}]},
        "turn 0 is from 'user'",
    ),
    (
        "bad_alternation",
        {"id": "a", "conversations": [{"from": "human", "value": "a"}, {"from": "human", "value": "b"}]},
        "turn 1 is from 'human' but 'gpt' was expected",
    ),
    (
        "empty_value",
        {"id": "e", "conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "  "}]},
        "turn 1 (gpt) has an empty value",
    ),
    (
        "bad_image_field",
        {"id": "f", "image": 7, "conversations": GOOD},
        "'image' must be a non-empty relative path; found 7",
    ),
    (
        "image_token_missing",
        {
            "id": "b",
            "image": "ok.png",
            "conversations": [{"from": "human", "value": "Colour?"}, {"from": "gpt", "value": "red"}],
        },
        "no <image> in its human turns",
    ),
    ("image_key_missing", {"id": "k", "conversations": GOOD}, "<image> appears 1x but the record has no 'image'"),
    (
        "multiple_image_tokens",
        {
            "id": "two",
            "image": "ok.png",
            "conversations": [
                {"from": "human", "value": "<image>\nA"},
                {"from": "gpt", "value": "x"},
                {"from": "human", "value": "<image>\nB"},
                {"from": "gpt", "value": "y"},
            ],
        },
        "<image> appears 2 times",
    ),
    ("image_missing", good("gone", "nope/missing.png"), "nope/missing.png does not exist"),
    ("image_unreadable", good("corrupt", "broken.png"), "broken.png cannot be read"),
    (
        "no_learnable_tokens",
        {"id": "n", "conversations": [{"from": "human", "value": "Hello?"}]},
        "no token of the record is learned",
    ),
]


def test_clean_file_passes(folder, tiny_tokenizer):
    report = check(folder, tiny_tokenizer, [good("1"), good("2")])
    assert report.ok and report.counts == {} and report.num_entries == 2
    kept = report.entries_or_raise()
    assert list(kept) == report.entries and kept.source_indices == [0, 1]
    assert "no problems" in report.format()


@pytest.mark.parametrize("kind, record, text", CASES, ids=[case[0] for case in CASES])
def test_each_problem_kind_names_file_and_entry(folder, tiny_tokenizer, kind, record, text):
    report = check(folder, tiny_tokenizer, [good("fine"), record])
    assert kind in report.counts, report.format()
    problem = report.by_kind()[kind][0]
    line = str(problem)
    assert str(folder / "train.json") in line
    sample_id = record.get("id") if isinstance(record, dict) else None
    assert f"entry 1 (id {sample_id!r})" in line
    assert text in line
    assert report.flagged_indices == [1]
    with pytest.raises(PreflightError) as raised:
        report.entries_or_raise()
    assert line in str(raised.value)


def test_every_entry_level_kind_has_a_case():
    file_level = {"data_file_missing", "invalid_json", "not_a_list", "no_records"}
    assert {case[0] for case in CASES} | file_level | {"answer_truncated", "template_mismatch"} == set(PROBLEM_KINDS)


def test_all_problems_are_reported_together_with_exact_counts(folder, tiny_tokenizer):
    records = [good("fine")] + [record for _, record, _ in CASES]
    report = check(folder, tiny_tokenizer, records)
    assert set(report.counts) == {case[0] for case in CASES}
    assert report.flagged_indices == list(range(1, len(records)))
    with pytest.raises(PreflightError) as raised:
        report.raise_if_problems()
    message = str(raised.value)
    assert message.startswith(f"Preflight found {len(report.problems)} problems in {folder / 'train.json'}")
    for kind in report.counts:
        assert f"{kind} (" in message
    assert raised.value.report is report
    assert "train on the 1 clean ones" in message


def test_long_lists_are_cut_but_counts_stay_exact(folder, tiny_tokenizer):
    records = [good(str(number), "missing.png") for number in range(30)]
    report = check(folder, tiny_tokenizer, records)
    assert report.counts == {"image_missing": 30}
    text = report.format(max_per_kind=5)
    assert "image_missing (30):" in text and "... and 25 more" in text
    assert text.count("missing.png does not exist") == 5


def test_json_syntax_error_gives_the_position(folder, tiny_tokenizer):
    path = folder / "train.json"
    path.write_text('[\n {"id": "1",\n  "conversations": [,]}\n]', encoding="utf-8")
    report = run_preflight(str(path), str(folder / "images"), tiny_tokenizer, "v1", 512, 16)
    assert report.file_unusable and report.counts == {"invalid_json": 1}
    assert "line 3, column 21" in report.format()
    with pytest.raises(PreflightError, match="not well-formed JSON"):
        report.entries_or_raise(skip_flagged=True)  # a broken file cannot be skipped around


def test_not_a_list_and_missing_file(folder, tiny_tokenizer):
    assert check(folder, tiny_tokenizer, {"id": "1"}).counts == {"not_a_list": 1}
    report = run_preflight(str(folder / "none.json"), None, tiny_tokenizer, "v1", 512, 16)
    assert report.counts == {"data_file_missing": 1}


def test_answer_cut_off_by_spliced_image_tokens(folder, tiny_tokenizer):
    records = [good("short")]
    assert check(folder, tiny_tokenizer, records, model_max_length=128, num_image_tokens=16).ok
    report = check(folder, tiny_tokenizer, records, model_max_length=128, num_image_tokens=576)
    assert report.counts == {"answer_truncated": 1}
    assert "model_max_length is 128" in report.format() and "576 positions" in report.format()
    # A long answer that starts before the limit still trains (partly): not flagged.
    long_answer = {"id": "long", "image": "ok.png", "conversations": [GOOD[0], {"from": "gpt", "value": "red " * 200}]}
    assert check(folder, tiny_tokenizer, [long_answer], model_max_length=128, num_image_tokens=16).ok


def test_text_only_answer_beyond_the_limit(folder, tiny_tokenizer):
    record = {"id": "t", "conversations": [{"from": "human", "value": "what " * 100}, {"from": "gpt", "value": "red"}]}
    assert check(folder, tiny_tokenizer, [record], model_max_length=64).counts == {"answer_truncated": 1}


def test_template_mismatch(folder, tiny_tokenizer):
    two_rounds = GOOD + [{"from": "human", "value": "And?"}, {"from": "gpt", "value": "blue"}]
    report = check(
        folder,
        tiny_tokenizer,
        [{"id": "p", "image": "ok.png", "conversations": two_rounds}],
        conversation_template=conv_templates["plain"],
    )
    assert report.counts == {"template_mismatch": 1}
    assert "the plain template" in report.format()


def test_skip_flagged_keeps_clean_entries_and_logs_the_count(folder, tiny_tokenizer, caplog, make_data_args):
    records = [good("a"), good("gone", "missing.png"), good("c")]
    report = check(folder, tiny_tokenizer, records)
    with caplog.at_level(logging.WARNING, logger="llava.train.preflight"):
        kept = report.entries_or_raise(skip_flagged=True)
    assert isinstance(kept, SelectedEntries)
    assert [entry["id"] for entry in kept] == ["a", "c"] and kept.source_indices == [0, 2]
    assert "skipped 1 flagged records of 3" in caplog.text and "training on 2" in caplog.text
    # The dataset trains on the kept records and names them by their place in the file.
    dataset = LazySupervisedDataset(
        None, tiny_tokenizer, make_data_args(image_folder=str(folder / "images")), "v1", entries=kept
    )
    assert len(dataset) == 2 and dataset.entry_indices == [0, 2] and dataset.data_path == str(folder / "train.json")
    assert dataset[1]["image"].shape == (3, 32, 32)


def test_skipping_everything_is_an_error(folder, tiny_tokenizer):
    report = check(folder, tiny_tokenizer, [good("gone", "missing.png")])
    with pytest.raises(PreflightError, match="nothing to train on"):
        report.entries_or_raise(skip_flagged=True)


def test_many_images_are_checked_in_parallel_with_a_progress_bar(folder, tiny_tokenizer, monkeypatch, write_image):
    for number in range(6):
        write_image(folder / "images" / f"{number}.png")
    monkeypatch.setattr(preflight_module, "PROGRESS_BAR_FROM", 3)
    records = [good(str(number), f"{number}.png") for number in range(6)] + [good("x", "missing.png")]
    report = check(folder, tiny_tokenizer, records)
    assert report.counts == {"image_missing": 1} and report.flagged_indices == [6]


def test_shared_image_problem_flags_every_user(folder, tiny_tokenizer):
    report = check(folder, tiny_tokenizer, [good("a", "missing.png"), good("b", "missing.png")])
    assert report.counts == {"image_missing": 2} and report.flagged_indices == [0, 1]


# ------------------------------------------------------------------ CLI


def cli_args(folder, tokenizer_dir, *extra):
    return [
        "--data_path",
        str(folder / "train.json"),
        "--image_folder",
        str(folder / "images"),
        "--tokenizer",
        str(tokenizer_dir),
        "--version",
        "v1",
        "--model_max_length",
        "512",
        "--num_image_tokens",
        "16",
        *extra,
    ]


def test_cli_exit_codes_and_kept_file(folder, tiny_tokenizer_dir, capsys):
    records = [good("a"), good("gone", "missing.png")]
    (folder / "train.json").write_text(json.dumps(records), encoding="utf-8")
    assert main(cli_args(folder, tiny_tokenizer_dir)) == 1
    assert "image_missing (1)" in capsys.readouterr().out
    kept_path = folder / "kept.json"
    assert main(cli_args(folder, tiny_tokenizer_dir, "--skip_flagged", "--kept_path", str(kept_path))) == 0
    out = capsys.readouterr().out
    assert "Skipped 1 flagged records of 2; 1 kept." in out
    assert [entry["id"] for entry in json.loads(kept_path.read_text())] == ["a"]
    (folder / "train.json").write_text(json.dumps([good("a")]), encoding="utf-8")
    assert main(cli_args(folder, tiny_tokenizer_dir)) == 0


def _truncated_jpeg(folder, write_image):
    """A JPEG cut to 60% of its bytes: its header verifies, its pixels do not decode."""
    from PIL import Image

    path = folder / "images" / "cut.jpg"
    Image.effect_noise((320, 240), 60).convert("RGB").save(path, quality=90)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * 0.6)])
    with Image.open(path) as image:
        image.verify()  # what the old check did: passes
    return path


def test_truncated_image_is_found_by_decoding(folder, tiny_tokenizer, write_image, make_data_args):
    _truncated_jpeg(folder, write_image)
    report = check(folder, tiny_tokenizer, [good("fine"), good("cut", "cut.jpg")])
    assert report.counts == {"image_unreadable": 1}, report.format()
    assert "entry 1 (id 'cut')" in str(report.problems[0]) and "cut.jpg cannot be read" in str(report.problems[0])
    kept = report.entries_or_raise(skip_flagged=True)
    assert [entry["id"] for entry in kept] == ["fine"]
    dataset = LazySupervisedDataset(
        str(folder / "train.json"),
        tiny_tokenizer,
        make_data_args(image_folder=str(folder / "images")),
        "v1",
        entries=kept,
    )
    assert dataset[0]["input_ids"].numel() > 0  # the kept record trains


@pytest.mark.parametrize("content, text", [("", "is empty"), ("  \n", "is empty"), ("[]", "is an empty list")])
def test_a_data_file_without_records_is_refused(folder, tiny_tokenizer, content, text):
    path = folder / "train.json"
    path.write_text(content)
    report = run_preflight(str(path), str(folder / "images"), tiny_tokenizer, "v1", 512, 16)
    assert report.counts == {"no_records": 1} and report.file_unusable
    with pytest.raises(PreflightError) as raised:
        report.entries_or_raise(skip_flagged=True)
    assert str(path) in str(raised.value) and text in str(raised.value)


def test_longest_is_the_longest_clean_record_with_its_image_spliced_in(folder, tiny_tokenizer):
    from llava.train.data import tokenize_conversation
    from llava.train.preflight import resolve_template

    short = good("short")
    longer = {"id": "longer", "image": "ok.png", "conversations": [GOOD[0], {"from": "gpt", "value": "red " * 20}]}
    broken = {**good("broken", image="broken.png"), "conversations": [GOOD[0], {"from": "gpt", "value": "red " * 40}]}
    report = check(folder, tiny_tokenizer, [short, longer, broken], num_image_tokens=16)
    sample = tokenize_conversation(longer["conversations"], tiny_tokenizer, resolve_template("v1"), True)
    assert report.longest == len(sample.input_ids) - 1 + 16  # the <image> token becomes 16 positions
    assert report.lengths[2] > report.longest  # the flagged record is measured but not counted
    limit = report.longest - 5  # the answer still starts before it: cut, not flagged
    assert check(folder, tiny_tokenizer, [longer], model_max_length=limit, num_image_tokens=16).longest == limit
