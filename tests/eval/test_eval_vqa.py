"""The generic scorer (llava/eval/eval_vqa.py) and its OK-VQA front: both normalisations named in
every report, the official files read directly, the --json keys, multiple choice."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llava.eval import eval_okvqa, eval_vqa

# question id -> (answers, prediction, official, lmms-eval, official-2015 accuracy), derived by hand
# from the references' code (tests/metrics/test_official_normalization.py and test_normalization.py).
QUESTIONS = {
    101: (["Yes"] * 10, "yes", 0.0, 1.0, 0.0),  # identical answers: official compares "yes" with "Yes" as is
    102: (["two"] * 4 + ["three"] * 6, "Two", 1.0, 1.0, 0.0),  # 2015: number words mapped in the prediction only
    103: (["hot dog"] * 2 + ["hotdog"] * 8, "hot-dog", 0.6, 0.6, 0.0),  # "-" was not punctuation in 2015
    104: (["race"] * 3 + ["racing"] * 7, "race", 0.9, 0.9, 0.9),
}


def write(path: Path, data) -> Path:
    path.write_text(json.dumps(data))
    return path


@pytest.fixture()
def official_files(tmp_path) -> tuple[Path, Path]:
    annotations = {
        "annotations": [
            {
                "image_id": 1,
                "question_id": qid,
                "question_type": "four",
                "answer_type": "other",
                "confidence": 3,
                "answers": [
                    {"answer": a, "raw_answer": a, "answer_confidence": "yes", "answer_id": i + 1}
                    for i, a in enumerate(answers)
                ],
            }
            for qid, (answers, *_rest) in QUESTIONS.items()
        ]
    }
    questions = {"questions": [{"image_id": 1, "question": f"q{qid}?", "question_id": qid} for qid in QUESTIONS]}
    return (
        write(tmp_path / "mscoco_val2014_annotations.json", annotations),
        write(tmp_path / "OpenEnded_mscoco_val2014_questions.json", questions),
    )


@pytest.fixture()
def answers(tmp_path) -> Path:
    path = tmp_path / "answers.jsonl"
    path.write_text("".join(json.dumps({"question_id": qid, "text": q[1]}) + "\n" for qid, q in QUESTIONS.items()))
    return path


@pytest.mark.parametrize(("normalization", "column"), [("official", 2), ("lmms-eval", 3), ("official-2015", 4)])
def test_official_files_scored_directly_under_each_normalisation(
    official_files, answers, tmp_path, capsys, normalization, column
):
    annotations, questions = official_files
    out = tmp_path / "scores.json"
    scores = eval_okvqa.main(
        [
            "--answers",
            str(answers),
            "--annotations",
            str(annotations),
            "--questions",
            str(questions),
            "--normalization",
            normalization,
            "--json",
            str(out),
        ]
    )
    expected = {str(qid): q[column] for qid, q in QUESTIONS.items()}
    assert scores["per_question"] == pytest.approx(expected)
    assert scores["vqa_accuracy"] == pytest.approx(100 * sum(expected.values()) / 4)
    written = json.loads(out.read_text())
    assert {"vqa_accuracy", "exact_match", "per_category", "normalization", "per_question"} <= written.keys()
    assert written["normalization"] == normalization and written["per_category"] == {"four": written["vqa_accuracy"]}
    assert written["per_answer_type"] == {"other": written["vqa_accuracy"]}
    printed = capsys.readouterr().out
    assert printed.startswith("OK-VQA scores for") and f"normalization {normalization}, not stemmed" in printed


def test_default_is_lmms_eval_and_numbers_differ(official_files, answers):
    annotations, _ = official_files
    default = eval_vqa.score_files(answers, annotations)
    assert default["normalization"] == "lmms-eval" and default["vqa_accuracy"] == pytest.approx(87.5)
    assert eval_vqa.score_files(answers, annotations, normalization="official")["vqa_accuracy"] == pytest.approx(62.5)


def test_ids_that_do_not_match_are_named_all_at_once(official_files, tmp_path, capsys):
    annotations, questions = official_files
    wrong = tmp_path / "wrong.jsonl"
    wrong.write_text("".join(json.dumps({"question_id": q, "text": "x"}) + "\n" for q in (101, 999)))
    with pytest.raises(SystemExit) as stopped:
        eval_okvqa.main(["--answers", str(wrong), "--annotations", str(annotations), "--questions", str(questions)])
    assert stopped.value.code == 2
    error = capsys.readouterr().err
    assert "1 answers are for questions not in the annotations: 999" in error
    assert "3 of 4 annotated questions have no answer: 102, 103, 104" in error


def test_multiple_choice(tmp_path, capsys):
    choices = ["bat", "ball", "glove", "cap"]
    annotations = write(
        tmp_path / "val_annotations.json",
        {
            "format": "llava-okvqa-annotations/1",
            "split": "val",
            "questions": {
                qid: {
                    "question": "?",
                    "answers": [choices[idx]] * 10,
                    "question_type": "",
                    "choices": choices,
                    "correct_choice_idx": idx,
                }
                for qid, idx in (("a1", 2), ("a2", 0), ("a3", 1))
            },
        },
    )
    answers = tmp_path / "mc.jsonl"
    answers.write_text(
        "".join(
            json.dumps({"question_id": q, "text": t}) + "\n"
            for q, t in (("a1", "C"), ("a2", "B"), ("a3", "I think so"))
        )
    )
    out = tmp_path / "mc.json"
    scores = eval_vqa.main(
        ["--task", "multiple-choice", "--answers", str(answers), "--annotations", str(annotations), "--json", str(out)]
    )
    assert json.loads(out.read_text()) == scores
    assert scores["choice_accuracy"] == pytest.approx(100 / 3)
    assert scores["unparsed"] == 1 and scores["per_question"] == {"a1": 1, "a2": 0, "a3": 0}
    assert (
        "VQA multiple-choice scores for" in (printed := capsys.readouterr().out) and "choice accuracy  33.33" in printed
    )
    # the direct-answer score of the same file: A-OKVQA has no categories
    direct = eval_vqa.score_files(answers, annotations)
    assert direct["per_category"] == {} and direct["count"] == 3


def test_multiple_choice_needs_choices(official_files, answers):
    annotations, _ = official_files
    with pytest.raises(eval_vqa.ScoringError, match="4 questions have no 'choices'"):
        eval_vqa.score_files(answers, annotations, task="multiple-choice")


def test_eval_okvqa_is_direct_only():
    with pytest.raises(SystemExit):
        eval_okvqa.build_parser().parse_args(["--answers", "a", "--annotations", "b", "--task", "multiple-choice"])
    assert eval_okvqa.build_parser().parse_args(["--answers", "a", "--annotations", "b"]).task == "direct"
