"""Tests for the A-OKVQA converter (llava.data.aokvqa): the file set agreed with the scorer (records with
choices, the multiple-choice question file, annotations), bad entries, skip flags, the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llava.data.aokvqa import AokvqaConfig, convert, main
from llava.data.synthetic import write_aokvqa_layout
from llava.data.vqa import ConversionError
from llava.metrics.choices import choice_prompt

SUFFIX = "Answer the question using a single word or phrase."


@pytest.fixture()
def dataset(tmp_path) -> Path:
    return write_aokvqa_layout(tmp_path / "raw", train_size=6, val_size=4, seed=0)


def run(dataset: Path, out: Path, **options):
    return convert(
        AokvqaConfig(
            aokvqa_dir=dataset / "aokvqa",
            coco_dir=dataset / "coco",
            out_dir=out,
            progress=False,
            **options,
        )
    )


def load(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))


def test_outputs_follow_the_contract_with_the_scorer(dataset, tmp_path):
    out = tmp_path / "out"
    summary = run(dataset, out, val_size=2)
    entries = {e["question_id"]: e for e in load(dataset / "aokvqa" / "aokvqa_v1p0_val.json")}
    val = load(out / "val.json")
    first = entries[val[0]["question_id"]]
    assert val[0] == {
        "id": first["question_id"],
        "image": f"val2017/{first['image_id']:012d}.jpg",
        "conversations": [
            {"from": "human", "value": f"<image>\n{first['question']}\n{SUFFIX}"},
            {"from": "gpt", "value": first["choices"][first["correct_choice_idx"]]},
        ],
        "question_id": first["question_id"],
        "answers": first["direct_answers"],
        "question_type": "",
        "choices": first["choices"],
        "correct_choice_idx": first["correct_choice_idx"],
        "rationales": first["rationales"],
    }
    assert [r["question_id"] for r in val] == sorted(entries)
    mc = [json.loads(line) for line in (out / "val_questions_mc.jsonl").read_text().splitlines()]
    assert mc[0] == {
        "question_id": first["question_id"],
        "image": val[0]["image"],
        "text": choice_prompt(first["question"], first["choices"]),
    }
    direct = [json.loads(line) for line in (out / "val_questions.jsonl").read_text().splitlines()]
    assert direct[0]["text"] == f"{first['question']}\n{SUFFIX}"
    annotations = load(out / "val_annotations.json")
    assert annotations["format"] == "llava-okvqa-annotations/1" and annotations["split"] == "val"
    assert annotations["questions"][first["question_id"]] == {
        "question": first["question"],
        "answers": first["direct_answers"],
        "question_type": "",
        "choices": first["choices"],
        "correct_choice_idx": first["correct_choice_idx"],
    }
    assert summary.image_folder == str((dataset / "coco").resolve())
    assert summary.splits["train"]["questions"] == 6 and len(load(out / "val_subset.json")) == 2
    assert sorted(p.name for p in out.iterdir()) == [
        "summary.json",
        "train.json",
        "val.json",
        "val_annotations.json",
        "val_questions.jsonl",
        "val_questions_mc.jsonl",
        "val_subset.json",
    ]
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    run(dataset, out, val_size=2)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_bad_entries_are_reported_together_and_skippable(dataset, tmp_path, capsys):
    path = dataset / "aokvqa" / "aokvqa_v1p0_train.json"
    entries = load(path)
    entries[0]["choices"] = entries[0]["choices"][:3]
    entries[1]["correct_choice_idx"] = 7
    entries[2]["direct_answers"] = entries[2]["direct_answers"][:9]
    entries[3]["question"] = ""
    entries[4]["question_id"] = entries[5]["question_id"]
    path.write_text(json.dumps(entries))
    (
        dataset / "coco" / "val2017" / f"{load(dataset / 'aokvqa' / 'aokvqa_v1p0_val.json')[0]['image_id']:012d}.jpg"
    ).unlink()
    argv = [
        "--aokvqa-dir",
        str(dataset / "aokvqa"),
        "--coco-dir",
        str(dataset / "coco"),
        "--out",
        str(tmp_path / "out"),
        "--no-progress",
    ]
    assert main(argv) == 1
    error = capsys.readouterr().err
    for text in (
        "A-OKVQA conversion failed: 6 problems",
        "3 choices (need 4)",
        "correct_choice_idx 7 is not 0-3",
        "(9 answers)",
        "empty question",
        "repeated in the train split",
        "missing",
        "--skip-bad-answers --skip-bad-questions --skip-duplicates --skip-bad-images",
    ):
        assert text in error, text
    assert not (tmp_path / "out").exists()
    skips = ["--skip-bad-answers", "--skip-bad-questions", "--skip-duplicates", "--skip-bad-images"]
    assert main([*argv, *skips]) == 0
    assert len(load(tmp_path / "out" / "train.json")) == 1
    assert len(load(tmp_path / "out" / "val.json")) == 3


def test_option_problems_are_reported_together(tmp_path):
    with pytest.raises(ConversionError) as raised:
        convert(AokvqaConfig(aokvqa_dir=tmp_path, coco_dir=None, val_size=-1, out_dir=tmp_path / "out"))
    for text in ("aokvqa_v1p0_train.json", "--coco-dir is needed", "--val-size must be 0 or more"):
        assert text in str(raised.value)
