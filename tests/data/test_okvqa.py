"""Tests for the OK-VQA converter (llava.data.okvqa): exact outputs, determinism, every bad input,
the val subset, filters, Hugging Face export layouts and atomic writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from llava.data.okvqa import (
    ANNOTATIONS_FORMAT,
    ConversionError,
    ConvertConfig,
    convert,
    main,
    resolve_category,
    write_atomic,
)

SUFFIX = "Answer the question using a single word or phrase."


def run(data, out: Path, **options):
    """Convert an official-layout fixture in-process."""
    config = ConvertConfig(okvqa_dir=data.okvqa_dir, coco_dir=data.coco_dir, out_dir=out, progress=False, **options)
    return convert(config)


def cli(data, out: Path, *flags: str) -> int:
    """Convert an official-layout fixture through the command line."""
    argv = ["--okvqa-dir", str(data.okvqa_dir), "--coco-dir", str(data.coco_dir), "--out", str(out)]
    return main([*argv, "--no-progress", *flags])


def load(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))


def ids(records) -> list:
    return [record["question_id"] for record in records]


def targets(records) -> dict:
    return {record["question_id"]: record["conversations"][1]["value"] for record in records}


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# --------------------------------------------------------------------------
# Official layout: exact outputs.
# --------------------------------------------------------------------------


def test_official_conversion_writes_exact_records(official, tmp_path, okvqa_kit):
    out = tmp_path / "out"
    summary = run(official, out)

    train = load(out / "train.json")
    assert train[0] == {
        "id": "1230",
        "image": "train2014/COCO_train2014_000000000123.jpg",
        "conversations": [
            {"from": "human", "value": f"<image>\nWhat sport is this?\n{SUFFIX}"},
            {"from": "gpt", "value": "skiing"},
        ],
        "question_id": 1230,
        "answers": ["skiing"] * 6 + ["ski"] * 2 + ["snow"] * 2,
        "question_type": "four",
    }
    assert list(train[0]) == [
        "id",
        "image",
        "conversations",
        "question_id",
        "answers",
        "question_type",
    ]
    assert ids(train) == [1230, 1231, 4560, 7890]
    # most common normalised answer; ties: raw count, then first occurrence
    # natural text: the most frequent raw spelling inside the winning normalised group
    assert targets(train) == {1230: "skiing", 1231: "Sunny", 4560: "Ford", 7890: "four"}

    val = load(out / "val.json")
    assert ids(val) == [1110, 2220, 2971475]
    assert targets(val) == {1110: "dogs", 2220: "hot-dog", 2971475: "race"}
    assert val[2]["image"] == "val2014/COCO_val2014_000000297147.jpg"
    assert val[2]["answers"] == okvqa_kit.VAL_ROWS[0][3]

    lines = (out / "val_questions.jsonl").read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[2]) == {
        "question_id": 2971475,
        "image": "val2014/COCO_val2014_000000297147.jpg",
        "text": f"What sport can you use this for?\n{SUFFIX}",
    }
    assert lines[0] == (
        '{"question_id": 1110, "image": "val2014/COCO_val2014_000000000111.jpg", '
        f'"text": "What animal is this?\\n{SUFFIX}"}}'
    )

    annotations = load(out / "val_annotations.json")
    assert annotations["format"] == ANNOTATIONS_FORMAT
    assert annotations["split"] == "val2014"
    assert list(annotations["questions"]) == ["1110", "2220", "2971475"]
    assert annotations["questions"]["2220"] == {
        "question": "What is in the bowl?",
        "answers": ["hot-dog"] * 4 + ["hot dog"] * 3 + ["sausage"] * 3,
        "question_type": "five",
    }

    assert summary.image_folder == str(official.coco_dir.resolve())
    assert summary.image_check == "decoded"
    assert summary.splits["train"] == {
        "questions": 4,
        "images": 3,
        "per_category": {"one": 2, "four": 1, "ten": 1},
        "target_words": {"1": 4},
    }
    assert summary.splits["val"]["target_words"] == {"1": 3}
    assert summary.skipped == {}
    assert load(out / "summary.json") == summary.to_dict()
    assert sorted(p.name for p in out.iterdir()) == [
        "summary.json",
        "train.json",
        "val.json",
        "val_annotations.json",
        "val_questions.jsonl",
    ]


def test_cli_prints_summary_with_image_folder(official, tmp_path, capsys):
    assert cli(official, tmp_path / "out") == 0
    printed = capsys.readouterr().out
    assert "train            4 questions       3 images" in printed
    assert f"--data_path {tmp_path / 'out' / 'train.json'} --image_folder {official.coco_dir.resolve()}" in printed
    assert "skipped nothing" in printed
    assert "val target length: 1 word 100.0%" in printed


def test_help_runs_as_a_module():
    result = subprocess.run(
        [sys.executable, "-m", "llava.data.okvqa", "--help"],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    for text in (
        "--okvqa-dir",
        "--hf-train",
        "--val-size",
        "--skip-bad-images",
        "examples:",
        "--image_folder",
    ):
        assert text in result.stdout


def test_rerun_is_byte_identical_and_leaves_no_temp_files(official, tmp_path):
    out = tmp_path / "out"
    run(official, out, val_size=2)
    first = folder_bytes(out)
    run(official, out, val_size=2)
    assert folder_bytes(out) == first
    assert not [p for p in out.rglob("*") if p.name.startswith(".") or p.suffix == ".tmp"]


@pytest.mark.parametrize("suffix", [SUFFIX, "Answer briefly.", ""])
def test_every_human_turn_starts_with_the_image_token(official, tmp_path, suffix):
    out = tmp_path / "out"
    run(official, out, prompt_suffix=suffix, val_size=2)
    for name in ("train.json", "val.json", "val_subset.json"):
        for record in load(out / name):
            human = record["conversations"][0]
            assert human["from"] == "human"
            assert human["value"].startswith("<image>\n")
            assert human["value"].count("<image>") == 1
            assert human["value"].endswith(suffix or "?")
    question = json.loads((out / "val_questions.jsonl").read_text().splitlines()[0])
    assert question["text"] == "\n".join(filter(None, ["What animal is this?", suffix]))


def test_stale_outputs_of_an_earlier_run_are_removed(official, tmp_path):
    out = tmp_path / "out"
    run(official, out, val_size=2)
    assert (out / "val_subset.json").exists()
    run(official, out, splits=["train"])
    assert sorted(p.name for p in out.iterdir()) == ["summary.json", "train.json"]


# --------------------------------------------------------------------------
# Atomic writes.
# --------------------------------------------------------------------------


def test_write_atomic_replaces_whole_files(tmp_path):
    target = tmp_path / "file.json"
    write_atomic(target, "old")
    write_atomic(target, b"new")
    assert target.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["file.json"]


def test_write_atomic_keeps_the_old_file_when_writing_fails(tmp_path, monkeypatch):
    target = tmp_path / "file.json"
    target.write_text("old")

    def broken_replace(source, destination):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_atomic(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["file.json"]


# --------------------------------------------------------------------------
# Bad input: each kind fails naming file and ids, or is skipped and counted.
# --------------------------------------------------------------------------


def drop_annotation(data):
    data.annotations["train"] = [a for a in data.annotations["train"] if a["question_id"] != 4560]


def nine_answers(data):
    data.annotations["train"][3]["answers"].pop()


def empty_question(data):
    data.questions["train"][3]["question"] = "   "


def duplicate_question(data):
    data.questions["train"].append(dict(data.questions["train"][2], question="Another copy?"))


def missing_image(data):
    data.image_path("train", 456).unlink()


def unreadable_image(data):
    data.image_path("train", 789).write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")


BAD_INPUTS = {
    # mutation: (flag, file named in the error, id named, reason named, train ids left when skipped)
    "missing annotation": (
        drop_annotation,
        "--skip-missing-annotations",
        "OpenEnded_mscoco_train2014_questions.json",
        "4560",
        "not in mscoco_train2014_annotations.json",
        [1230, 1231, 7890],
    ),
    "nine answers": (
        nine_answers,
        "--skip-bad-answers",
        "OpenEnded_mscoco_train2014_questions.json",
        "7890",
        "9 answers",
        [1230, 1231, 4560],
    ),
    "empty question": (
        empty_question,
        "--skip-bad-questions",
        "OpenEnded_mscoco_train2014_questions.json",
        "7890",
        "empty question",
        [1230, 1231, 4560],
    ),
    "duplicate id": (
        duplicate_question,
        "--skip-duplicates",
        "OpenEnded_mscoco_train2014_questions.json",
        "4560",
        "repeated in the train split",
        [1230, 1231, 4560, 7890],
    ),
    "missing image": (
        missing_image,
        "--skip-bad-images",
        "OpenEnded_mscoco_train2014_questions.json",
        "4560",
        "train2014/COCO_train2014_000000000456.jpg missing",
        [1230, 1231, 7890],
    ),
    "unreadable image": (
        unreadable_image,
        "--skip-bad-images",
        "OpenEnded_mscoco_train2014_questions.json",
        "7890",
        "train2014/COCO_train2014_000000000789.jpg unreadable",
        [1230, 1231, 4560],
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_fails_naming_file_and_ids(official, tmp_path, capsys, case):
    mutate, flag, file_name, question_id, reason, _ = BAD_INPUTS[case]
    mutate(official)
    official.write()
    out = tmp_path / "out"
    assert cli(official, out) == 1
    error = capsys.readouterr().err
    assert file_name in error
    assert f"question ids {question_id}" in error
    assert reason in error
    assert f"skip with {flag}" in error
    assert not out.exists() or not list(out.iterdir())


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_skip_flag_drops_and_counts(official, tmp_path, capsys, case):
    mutate, flag, _, question_id, _, left = BAD_INPUTS[case]
    mutate(official)
    official.write()
    out = tmp_path / "out"
    assert cli(official, out, flag) == 0
    printed = capsys.readouterr().out
    assert "skipped 1 " in printed and f"({flag}): {question_id}" in printed
    assert ids(load(out / "train.json")) == left
    skipped = load(out / "summary.json")["skipped"]
    assert [entry["count"] for entry in skipped.values()] == [1]
    assert next(iter(skipped.values()))["question_ids"] == [int(question_id)]


def test_duplicate_keeps_the_first_copy(official, tmp_path):
    duplicate_question(official)
    official.write()
    out = tmp_path / "out"
    run(official, out, skip_duplicates=True)
    record = next(r for r in load(out / "train.json") if r["question_id"] == 4560)
    assert record["conversations"][0]["value"].startswith("<image>\nWhich company makes this vehicle?")


def test_question_id_in_both_splits_drops_the_train_copy(official, tmp_path):
    official.add("val", 7890, 790, "How many wheels?", ["4"] * 10)
    official.write()
    with pytest.raises(ConversionError, match=r"\(also a val question id\): question ids 7890"):
        run(official, tmp_path / "out")
    run(official, tmp_path / "out", skip_duplicates=True)
    assert 7890 not in ids(load(tmp_path / "out" / "train.json"))
    assert 7890 in ids(load(tmp_path / "out" / "val.json"))


def test_question_with_image_tag_is_refused(official, tmp_path):
    official.questions["val"][0]["question"] = "<image> What sport?"
    official.write()
    with pytest.raises(ConversionError, match=r"\(<image> in the question\): question ids 2971475"):
        run(official, tmp_path / "out")


def test_answers_that_normalise_to_nothing_are_bad(official, tmp_path):
    official.annotations["val"][1]["answers"] = [{"answer": "?"}] * 10
    official.write()
    with pytest.raises(ConversionError, match="no answer left after normalisation"):
        run(official, tmp_path / "out")


def test_all_problems_are_reported_in_one_error(official, tmp_path, capsys):
    nine_answers(official)
    drop_annotation(official)
    official.annotations["val"][0]["answers"] = official.annotations["val"][0]["answers"][:3]
    official.write()
    official.image_path("train", 123).unlink()
    official.image_path("val", 222).write_bytes(b"broken")
    assert cli(official, tmp_path / "out") == 1
    error = capsys.readouterr().err
    train_file = official.okvqa_dir / "OpenEnded_mscoco_train2014_questions.json"
    val_file = official.okvqa_dir / "OpenEnded_mscoco_val2014_questions.json"
    expected = [
        "OK-VQA conversion failed: 6 problems in the input; no JSON output was written.",
        f"- 1 questions without an annotation in {train_file} (not in mscoco_train2014_annotations.json):"
        " question ids 4560 [skip with --skip-missing-annotations]",
        f"- 1 annotations without ten usable answers in {train_file} (9 answers): question ids 7890"
        " [skip with --skip-bad-answers]",
        f"- 1 annotations without ten usable answers in {val_file} (3 answers): question ids 2971475"
        " [skip with --skip-bad-answers]",
        f"- 2 questions whose image is missing or unreadable in {train_file}"
        " (train2014/COCO_train2014_000000000123.jpg missing): question ids 1230, 1231"
        " [skip with --skip-bad-images]",
    ]
    lines = error.removeprefix("error: ").splitlines()
    assert lines[:5] == expected
    assert lines[5].startswith(f"- 1 questions whose image is missing or unreadable in {val_file}")
    assert "val2014/COCO_val2014_000000000222.jpg unreadable" in lines[5]
    assert lines[6] == (
        "Fix the input, or drop these questions with: --skip-missing-annotations --skip-bad-answers --skip-bad-images"
    )


def test_mixed_reasons_are_listed_per_id(official, tmp_path):
    official.image_path("train", 123).unlink()
    official.image_path("train", 456).unlink()
    with pytest.raises(ConversionError) as raised:
        run(official, tmp_path / "out")
    assert (
        "question ids 1230 (train2014/COCO_train2014_000000000123.jpg missing), "
        "1231 (train2014/COCO_train2014_000000000123.jpg missing), "
        "4560 (train2014/COCO_train2014_000000000456.jpg missing)"
    ) in str(raised.value)


def test_long_id_lists_are_truncated_with_a_count(tmp_path, okvqa_kit):
    rows = {
        "train": [(100 + i, 500 + i, f"Question {i}?", ["x"] * 10, "one") for i in range(30)],
        "val": okvqa_kit.VAL_ROWS,
    }
    data = okvqa_kit.build_official(tmp_path, rows)
    data.annotations["train"] = []
    data.write()
    with pytest.raises(ConversionError) as raised:
        run(data, tmp_path / "out")
    message = str(raised.value)
    assert "30 questions without an annotation" in message
    assert "question ids 100, 101," in message and "119, ... and 10 more" in message
    assert "120" not in message
    assert len(raised.value.issues) == 30


def test_no_image_check_skips_decoding_but_still_finds_missing_images(official, tmp_path):
    unreadable_image(official)
    summary = run(official, tmp_path / "out", check_images=False)
    assert summary.image_check == "presence only"
    assert 7890 in ids(load(tmp_path / "out" / "train.json"))
    missing_image(official)
    with pytest.raises(ConversionError, match="COCO_train2014_000000000456.jpg missing"):
        run(official, tmp_path / "out2", check_images=False)


def test_option_problems_are_reported_together(tmp_path, official):
    with pytest.raises(ConversionError) as raised:
        convert(
            ConvertConfig(
                okvqa_dir=tmp_path / "nowhere",
                hf_val=[tmp_path / "missing.parquet"],
                val_size=-1,
                limit=0,
                categories=["pets"],
                out_dir=tmp_path / "out",
            )
        )
    message = str(raised.value)
    for text in (
        "not both or neither",
        "OpenEnded_mscoco_train2014_questions.json",
        "--coco-dir is needed",
        "missing export file",
        "--val-size must be 0 or more",
        "--limit must be positive",
        "unknown OK-VQA category 'pets'",
    ):
        assert text in message
    with pytest.raises(ConversionError, match="--val-from train needs the train split"):
        run(official, tmp_path / "out", splits=["val"], val_size=1, val_from="train")


# --------------------------------------------------------------------------
# Val subset, categories, limit.
# --------------------------------------------------------------------------


def test_val_subset_from_val_is_seeded(official, tmp_path):
    summary = run(official, tmp_path / "a", val_size=2, seed=3)
    run(official, tmp_path / "b", val_size=2, seed=3)
    subset = load(tmp_path / "a" / "val_subset.json")
    assert (tmp_path / "a" / "val_subset.json").read_bytes() == (tmp_path / "b" / "val_subset.json").read_bytes()
    assert len(subset) == 2 and ids(subset) == sorted(ids(subset))
    assert set(ids(subset)) <= set(ids(load(tmp_path / "a" / "val.json")))
    assert len(load(tmp_path / "a" / "val.json")) == 3  # val itself stays whole
    assert subset[0]["answers"] and subset[0]["conversations"][1]["value"]
    assert summary.val_subset == {"from": "val", "seed": 3, "requested": 2, "size": 2}


def test_val_subset_from_train_is_disjoint_by_image(tmp_path, okvqa_kit):
    # 12 train questions on 6 images (2 each), plus one image with a single question
    rows = [
        (1000 + 10 * image + k, image, f"Q {image}-{k}?", ["a b"] * 10, "one")
        for image in range(1, 7)
        for k in range(2)
    ]
    rows.append((9990, 999, "Lonely question?", ["yes"] * 10, "two"))
    data = okvqa_kit.build_official(tmp_path, {"train": rows, "val": okvqa_kit.VAL_ROWS})
    draws = []
    for seed in range(4):
        out = tmp_path / f"out{seed}"
        summary = run(data, out, val_size=5, val_from="train", seed=seed)
        subset, train = load(out / "val_subset.json"), load(out / "train.json")
        assert len(subset) == 5  # two whole images and the single-question one
        assert {r["image"] for r in subset}.isdisjoint({r["image"] for r in train})
        assert sorted(ids(subset) + ids(train)) == sorted(r[0] for r in rows)
        assert len(load(out / "val.json")) == 3
        assert summary.splits["train"]["questions"] == 8
        draws.append(tuple(ids(subset)))
    assert len(set(draws)) > 1  # the seed matters
    run(data, tmp_path / "again", val_size=5, val_from="train", seed=0)
    assert (tmp_path / "again" / "val_subset.json").read_bytes() == (tmp_path / "out0" / "val_subset.json").read_bytes()


def test_val_size_larger_than_the_pool_fails(official, tmp_path):
    with pytest.raises(ConversionError, match="--val-size 4 is more than the 3 val questions"):
        run(official, tmp_path / "out", val_size=4)
    with pytest.raises(ConversionError, match="train must keep some"):
        run(official, tmp_path / "out", val_size=4, val_from="train")


@pytest.mark.parametrize("category", ["one", "1", "Vehicles and Transportation", "vehicles", "ONE"])
def test_categories_filter_by_code_or_name(official, tmp_path, category):
    summary = run(official, tmp_path / "out", categories=[category])
    assert ids(load(tmp_path / "out" / "train.json")) == [4560, 7890]
    assert ids(load(tmp_path / "out" / "val.json")) == [2971475]
    assert summary.filters == {"categories": ["one"], "limit": None}


def test_categories_several_and_resolution():
    assert resolve_category("Plants and Animals") == "eight"
    assert resolve_category("brands, companies and products") == "two"
    assert resolve_category("other") == "other"
    assert resolve_category("10") == "ten"
    with pytest.raises(ValueError, match="unknown OK-VQA category"):
        resolve_category("11")


def test_a_category_filter_that_keeps_nothing_is_an_error(official, tmp_path):
    with pytest.raises(ConversionError, match="--categories nine: no train question is in them"):
        run(official, tmp_path / "out", categories=["nine"])
    assert not (tmp_path / "out" / "train.json").exists()


def test_limit_keeps_the_first_questions_of_each_split(official, tmp_path):
    run(official, tmp_path / "out", limit=2, categories=["one", "eight", "four"])
    assert ids(load(tmp_path / "out" / "train.json")) == [1230, 4560]
    assert ids(load(tmp_path / "out" / "val.json")) == [1110, 2971475]


# --------------------------------------------------------------------------
# Hugging Face exports.
# --------------------------------------------------------------------------


@pytest.fixture()
def official_output(official, tmp_path) -> Path:
    out = tmp_path / "official-out"
    run(official, out)
    return out


@pytest.mark.parametrize(
    ("layout", "fmt"),
    [
        ("fatima", "parquet"),
        ("m4", "parquet"),
        ("lmms", "parquet"),
        ("m4", "arrow-file"),
        ("fatima", "arrow-stream"),
    ],
)
def test_exports_give_the_same_records_as_the_official_files(tmp_path, official_output, layout, fmt, okvqa_kit):
    suffix = ".parquet" if fmt == "parquet" else ".arrow"
    train = okvqa_kit.write_export(tmp_path / "hf" / f"train{suffix}", layout, "train", fmt=fmt)
    val = okvqa_kit.write_export(tmp_path / "hf" / f"val{suffix}", layout, "val", fmt=fmt)
    out = tmp_path / "out"
    summary = convert(ConvertConfig(hf_train=[train], hf_val=[val], out_dir=out, progress=False))
    for name in ("train.json", "val.json", "val_questions.jsonl", "val_annotations.json"):
        assert (out / name).read_bytes() == (official_output / name).read_bytes(), name
    assert summary.source == "huggingface"
    assert summary.image_folder == str((out / "images").resolve())
    for split, rows in (("train", okvqa_kit.TRAIN_ROWS), ("val", okvqa_kit.VAL_ROWS)):
        for _, image_id, _, _, _ in rows:
            written = out / "images" / f"{split}2014" / okvqa_kit.coco_name(split, image_id)
            assert written.read_bytes() == okvqa_kit.jpeg_bytes(image_id)
    assert len(list((out / "images").rglob("*.jpg"))) == 6  # once per image, not per question


def test_export_folder_input_and_png_reencoding(tmp_path, okvqa_kit):
    folder = tmp_path / "hf-val"
    okvqa_kit.write_export(
        folder / "part-0.parquet",
        "m4",
        "val",
        rows=okvqa_kit.VAL_ROWS[:2],
        image_bytes={111: okvqa_kit.png_bytes(1)},
    )
    okvqa_kit.write_export(folder / "part-1.parquet", "m4", "val", rows=okvqa_kit.VAL_ROWS[2:])
    out = tmp_path / "out"
    summary = convert(ConvertConfig(hf_val=[folder], out_dir=out, progress=False))
    assert summary.splits["val"]["questions"] == 3
    written = (out / "images" / "val2014" / okvqa_kit.coco_name("val", 111)).read_bytes()
    assert written.startswith(b"\xff\xd8\xff")  # re-encoded as JPEG
    assert any("re-encoded as JPEG" in note for note in summary.notes)


def test_export_image_given_by_path(tmp_path, okvqa_kit):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = okvqa_kit.write_export(tmp_path / "hf" / "val.parquet", "m4", "val")
    table = pq.read_table(path)
    image_file = tmp_path / "hf" / "pictures" / "x.jpg"
    image_file.parent.mkdir()
    image_file.write_bytes(okvqa_kit.jpeg_bytes(42))
    images = table.column("image").to_pylist()
    images[0] = {"bytes": None, "path": "pictures/x.jpg"}  # relative to the export file
    table = table.set_column(0, "image", pa.array(images, type=table.schema.field("image").type))
    pq.write_table(table, path)
    convert(ConvertConfig(hf_val=[path], out_dir=tmp_path / "out", progress=False))
    assert (
        tmp_path / "out" / "images" / "val2014" / okvqa_kit.coco_name("val", 297147)
    ).read_bytes() == okvqa_kit.jpeg_bytes(42)


def test_export_bad_image_fails_or_is_skipped(tmp_path, capsys, okvqa_kit):
    path = okvqa_kit.write_export(tmp_path / "val.parquet", "lmms", "val", image_bytes={222: b"not an image"})
    argv = ["--hf-val", str(path), "--out", str(tmp_path / "out"), "--no-progress"]
    assert main(argv) == 1
    error = capsys.readouterr().err
    assert f"in {path} (image unreadable: " in error and "): question ids 2220 [skip with" in error
    assert not (tmp_path / "out" / "val.json").exists()
    assert main([*argv, "--skip-bad-images"]) == 0
    assert (
        "skipped 1 questions whose image is missing or unreadable (--skip-bad-images): 2220" in capsys.readouterr().out
    )
    assert ids(load(tmp_path / "out" / "val.json")) == [1110, 2971475]


def test_export_row_without_answers_is_a_missing_annotation(tmp_path, okvqa_kit):
    import pyarrow.parquet as pq

    path = okvqa_kit.write_export(tmp_path / "val.parquet", "lmms", "val")
    table = pq.read_table(path)
    answers = table.column("answers").to_pylist()
    answers[1] = None
    table = table.set_column(table.schema.get_field_index("answers"), "answers", [answers])
    pq.write_table(table, path)
    with pytest.raises(
        ConversionError,
        match=r"questions without an annotation in .*val.parquet \(no answers in the row\): question ids 1110",
    ):
        convert(ConvertConfig(hf_val=[path], out_dir=tmp_path / "out", progress=False))


def test_unknown_export_layout_names_the_columns(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "odd.parquet"
    pq.write_table(pa.table({"img": [b"x"], "q": ["?"]}), path)
    with pytest.raises(ConversionError, match=r"odd.parquet: cannot tell the OK-VQA layout: .*it has img, q"):
        convert(ConvertConfig(hf_val=[path], out_dir=tmp_path / "out", progress=False))


def test_export_answers_of_the_wrong_shape_are_bad_answers(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "val.parquet"
    image = {"bytes": b"\xff\xd8\xff", "path": None}
    pq.write_table(
        pa.table({"question_id": ["11"], "question": ["Why?"], "image": [image], "answers": ["x"]}),
        path,
    )
    with pytest.raises(ConversionError, match=r"\(0 answers\): question ids 11"):
        convert(ConvertConfig(hf_val=[path], out_dir=tmp_path / "out", progress=False))


def test_official_question_without_image_id_is_a_bad_question(official, tmp_path):
    official.questions["train"][0]["image_id"] = None
    official.questions["train"][1]["image_id"] = "123"  # a digit string is fine
    official.write()
    with pytest.raises(ConversionError, match=r"\(no image_id\): question ids 1230 \[skip"):
        run(official, tmp_path / "out")
    run(official, tmp_path / "out", skip_bad_questions=True)
    assert ids(load(tmp_path / "out" / "train.json")) == [1231, 4560, 7890]


def test_okvqa_category_table_is_the_converters_and_the_scorers():
    from llava.data import okvqa
    from llava.metrics.annotations import OKVQA_CATEGORIES

    assert okvqa.CATEGORIES is OKVQA_CATEGORIES
    assert len(OKVQA_CATEGORIES) == 11 and OKVQA_CATEGORIES["eight"] == "Plants and Animals"
