"""Annotation formats (llava/metrics/annotations.py): the converter's, LLaVA lists, the official
VQA files (with the questions file) and official A-OKVQA; every problem named by question id."""

from __future__ import annotations

import json

import pytest

from llava.metrics.annotations import Annotation, ScoringError, load_annotations


def write(path, data):
    path.write_text(json.dumps(data))
    return path


def official_annotation(question_id, answers, question_type="one"):
    return {
        "image_id": 9,
        "question_id": question_id,
        "question_type": question_type,
        "answer_type": "other",
        "confidence": 3,
        "answers": [
            {"answer": a, "raw_answer": a.upper(), "answer_confidence": "yes", "answer_id": i + 1}
            for i, a in enumerate(answers)
        ],
    }


def test_official_annotations_use_answer_not_raw_answer_and_take_question_texts(tmp_path):
    annotations = write(
        tmp_path / "mscoco_val2014_annotations.json",
        {
            "info": {},
            "data_subtype": "val2014",
            "annotations": [official_annotation(5, ["race"] * 10), official_annotation(6, ["dog"] * 10, "eight")],
        },
    )
    questions = write(
        tmp_path / "OpenEnded_mscoco_val2014_questions.json",
        {
            "questions": [
                {"image_id": 9, "question": "What sport?", "question_id": 5},
                {"image_id": 9, "question": "What animal?", "question_id": 6},
            ]
        },
    )
    loaded = load_annotations(annotations, questions)
    assert loaded == {
        "5": Annotation(answers=("race",) * 10, question_type="one", question="What sport?", answer_type="other"),
        "6": Annotation(answers=("dog",) * 10, question_type="eight", question="What animal?", answer_type="other"),
    }
    assert load_annotations(annotations)["5"].question is None


def test_questions_file_must_hold_exactly_the_annotated_ids(tmp_path):
    annotations = write(tmp_path / "a.json", {"annotations": [official_annotation(5, ["x"] * 10)]})
    questions = write(
        tmp_path / "q.json", {"questions": [{"question_id": 6, "question": "?"}, {"question_id": 6, "question": "?"}]}
    )
    with pytest.raises(ScoringError) as error:
        load_annotations(annotations, questions)
    message = str(error.value)
    assert "question 6 appears twice" in message
    assert "1 question without an annotation: 6" in message
    assert "1 annotated question not in the questions file: 5" in message


def test_every_problem_is_reported_at_once_by_id(tmp_path):
    path = write(
        tmp_path / "a.json",
        {
            "annotations": [
                official_annotation(1, ["a"] * 10),
                official_annotation(1, ["b"] * 10),
                {"question_id": 2, "answers": []},
                {"question_id": 3, "answers": [{"answer": 4}]},
            ]
        },
    )
    with pytest.raises(ScoringError) as error:
        load_annotations(path)
    message = str(error.value)
    assert message.startswith(f"{path}: 3 problems: ")
    assert "question 1 appears twice" in message and "question 2: 'answers'" in message and "question 3:" in message


def test_aokvqa_formats_carry_choices(tmp_path):
    record = {
        "question_id": "22jbM6gDxdaMaunuzgrsBB",
        "question": "What is he holding?",
        "image_id": 1,
        "choices": ["bat", "ball", "glove", "cap"],
        "correct_choice_idx": 2,
        "direct_answers": ["glove"] * 10,
        "rationales": ["r"],
        "difficult_direct_answer": False,
    }
    official = load_annotations(write(tmp_path / "aokvqa_v1p0_val.json", [record]))
    converted = load_annotations(
        write(
            tmp_path / "val_annotations.json",
            {
                "format": "llava-okvqa-annotations/1",
                "split": "val",
                "questions": {
                    record["question_id"]: {
                        "question": record["question"],
                        "answers": ["glove"] * 10,
                        "question_type": "",
                        "choices": record["choices"],
                        "correct_choice_idx": 2,
                    }
                },
            },
        )
    )
    assert official == converted
    annotation = official["22jbM6gDxdaMaunuzgrsBB"]
    assert annotation.choices == ("bat", "ball", "glove", "cap") and annotation.correct_choice_idx == 2

    bad = dict(record, correct_choice_idx=4)
    with pytest.raises(ScoringError, match="question 22jbM6gDxdaMaunuzgrsBB: 'correct_choice_idx' must be an index"):
        load_annotations(write(tmp_path / "bad.json", [bad]))


def test_unknown_layout_and_wrong_format_are_named(tmp_path):
    with pytest.raises(ScoringError, match="expected val_annotations.json"):
        load_annotations(write(tmp_path / "x.json", {"something": 1}))
    with pytest.raises(ScoringError, match="format 'other/2'"):
        load_annotations(write(tmp_path / "y.json", {"format": "other/2", "questions": {}}))
