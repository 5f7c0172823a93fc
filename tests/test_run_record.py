"""A run records its data, image folders and template (llava/run_record.py), and the readers use it:
answering takes the template, the evaluation browser the image folder, the scorer the run's subset."""

from __future__ import annotations

import json
import logging

from llava.run_record import (
    CONFIG_KEY,
    RUN_FILE,
    build_record,
    choose_conv_mode,
    conv_mode_for_version,
    evaluated_questions,
    file_sha256,
    read_record,
    recorded_conv_mode,
    write_run_file,
)


def test_the_template_follows_upstreams_version_rule():
    assert conv_mode_for_version("v1") == "vicuna_v1"  # one template, its fullest name
    assert conv_mode_for_version("llava_llama_2") == "llava_llama_2"
    assert conv_mode_for_version("no-such-template") == "vicuna_v1"
    assert conv_mode_for_version("v0") == "vicuna_v1"  # the module default, as upstream trains v0


def test_the_record_is_absolute_and_hashes_the_data(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.json").write_text("[]")
    (tmp_path / "data" / "val.json").write_text('[{"question_id": 7}]')
    record = build_record("v1", "data/train.json", "images", "data/val.json", None)
    assert record["data_path"] == str(tmp_path / "data" / "train.json")
    assert record["image_folder"] == record["validation_image_folder"] == str(tmp_path / "images")
    assert record["data_sha256"] == file_sha256(tmp_path / "data" / "train.json") != record["validation_data_sha256"]
    assert record["conv_mode"] == "vicuna_v1"
    assert build_record("v1", "data/train.json", "images")["validation_image_folder"] is None


def test_readers_take_run_json_then_config_and_ignore_garbage(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    assert read_record(run) is None and recorded_conv_mode(run) is None
    (run / "config.json").write_text(json.dumps({CONFIG_KEY: {"conv_mode": "llava_v0"}}))
    assert recorded_conv_mode(run) == "llava_v0"  # a merged model keeps only its config
    write_run_file(run, {"conv_mode": "vicuna_v1"})
    assert (run / RUN_FILE).is_file() and recorded_conv_mode(run) == "vicuna_v1"
    (run / RUN_FILE).write_bytes(b"\xff\xfe[[[")
    assert recorded_conv_mode(run) == "llava_v0"
    (run / "config.json").write_text(json.dumps({CONFIG_KEY: {"conv_mode": "not-a-template"}}))
    assert recorded_conv_mode(run) is None
    assert recorded_conv_mode("liuhaotian/llava-v1.5-7b") is None  # a Hub id: no record, no network


def test_choose_conv_mode_says_when_it_uses_the_record(tmp_path, caplog):
    write_run_file(tmp_path, {"conv_mode": "vicuna_v1"})
    with caplog.at_level(logging.INFO, logger="llava"):
        assert choose_conv_mode(tmp_path, None, "llava_v1") == "vicuna_v1"
    assert "the template" in caplog.text and "--conv-mode" in caplog.text
    assert choose_conv_mode(tmp_path, "llava_v0", "llava_v1") == "llava_v0"
    assert choose_conv_mode(tmp_path / "none", None, "llava_v1") == "llava_v1"


def test_a_runs_epoch_file_knows_its_questions(tmp_path):
    validation = tmp_path / "val_subset.json"
    validation.write_text(json.dumps([{"question_id": 5}, {"id": "6"}]))
    run = tmp_path / "run"
    write_run_file(run, {"validation_data_path": str(validation)})
    assert evaluated_questions(run / "eval" / "epoch_1.jsonl") == ({"5", "6"}, str(validation))
    assert evaluated_questions(tmp_path / "answers.jsonl") is None
    assert evaluated_questions(run / "eval" / "okvqa_val_answers.jsonl") is None  # the main script's final answers
