"""The offline scorer (llava/eval/eval_okvqa.py): hand-computed numbers, both annotation
formats, errors that name the question ids, the CLI, and the same numbers as the
training evaluation on the same predictions."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from llava.eval.eval_okvqa import (
    ScoringError,
    build_records,
    load_annotations,
    load_answers,
    main,
    score_files,
)
from llava.eval.vqa_accuracy import score_predictions

# Three questions, ten answers each. Expected per question (no stemming):
# 1: "Dogs" vs 3x "dogs" -> 0.9; 2: "two" normalises to "2", 10x "2" -> 1.0; 3: "cat" vs none -> 0.0.
QUESTIONS = {
    "1": {"question": "What animal?", "answers": ["dogs"] * 3 + ["dog"] * 7, "question_type": "eight"},
    "2": {"question": "How many?", "answers": ["2"] * 10, "question_type": "eight"},
    "3": {"question": "What brand?", "answers": ["nike"] * 10, "question_type": "two"},
}
PREDICTIONS = {1: "Dogs", 2: "two", 3: "cat"}


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.fixture()
def annotations(tmp_path) -> Path:
    path = tmp_path / "val_annotations.json"
    path.write_text(json.dumps({"format": "llava-okvqa-annotations/1", "split": "val2014", "questions": QUESTIONS}))
    return path


@pytest.fixture()
def answers(tmp_path) -> Path:
    # model_vqa's format, integer ids (the annotations' keys are text)
    return write_jsonl(
        tmp_path / "answers.jsonl",
        [
            {"question_id": qid, "prompt": "q", "text": text, "answer_id": "x", "model_id": "m", "metadata": {}}
            for qid, text in PREDICTIONS.items()
        ],
    )


def test_scores_match_hand_computed_values(answers, annotations):
    scores = score_files(answers, annotations)
    assert scores["count"] == 3 and scores["annotated"] == 3 and scores["stem"] is False
    assert scores["vqa_accuracy"] == pytest.approx(100 * (0.9 + 1.0 + 0.0) / 3)
    # exact match: "dogs" is not the most common answer ("dog"), "2" is, "cat" is not
    assert scores["exact_match"] == pytest.approx(100 / 3)
    assert scores["per_category"] == {"eight": pytest.approx(95.0), "two": 0.0}


def test_stemming_is_an_option(answers, annotations):
    stemmed = score_files(answers, annotations, stem=True)
    assert stemmed["stem"] is True
    assert stemmed["per_category"]["eight"] == pytest.approx(100.0)  # dogs == dog once stemmed


def test_llava_format_annotations_and_prediction_key(tmp_path, annotations):
    records = [
        {
            "id": qid,
            "question_id": int(qid),
            "answers": q["answers"],
            "question_type": q["question_type"],
            "conversations": [],
        }
        for qid, q in QUESTIONS.items()
    ]
    llava_json = tmp_path / "val_subset.json"
    llava_json.write_text(json.dumps(records))

    def ground_truth(path):
        return {key: (a.answers, a.question_type) for key, a in load_annotations(path).items()}

    assert ground_truth(llava_json) == ground_truth(annotations)
    # the training evaluation's epoch_{k}.jsonl holds 'prediction' instead of 'text'
    epoch_file = write_jsonl(
        tmp_path / "epoch_1.jsonl", [{"question_id": qid, "prediction": text} for qid, text in PREDICTIONS.items()]
    )
    assert load_answers(epoch_file) == {str(qid): text for qid, text in PREDICTIONS.items()}


def test_missing_and_unknown_question_ids_are_named(tmp_path, annotations):
    partial = write_jsonl(tmp_path / "partial.jsonl", [{"question_id": 1, "text": "dog"}])
    with pytest.raises(ScoringError, match=r"2 of 3 annotated questions have no answer: 2, 3"):
        score_files(partial, annotations)
    scores = score_files(partial, annotations, partial=True)
    assert scores["count"] == 1 and scores["vqa_accuracy"] == pytest.approx(100.0)

    unknown = write_jsonl(tmp_path / "unknown.jsonl", [{"question_id": q, "text": "x"} for q in (1, 2, 3, 77, 78)])
    with pytest.raises(ScoringError, match=r"2 answers are for questions not in the annotations: 77, 78"):
        score_files(unknown, annotations)

    twice = write_jsonl(tmp_path / "twice.jsonl", [{"question_id": 1, "text": "a"}, {"question_id": "1", "text": "b"}])
    with pytest.raises(ScoringError, match=r"twice.jsonl:2: question 1 is answered again \(first on line 1\)"):
        load_answers(twice)


def test_cli_prints_and_writes_json(answers, annotations, tmp_path, capsys):
    out = tmp_path / "scores" / "okvqa.json"
    scores = main(["--answers", str(answers), "--annotations", str(annotations), "--json", str(out)])
    printed = capsys.readouterr().out
    assert "VQA accuracy   63.33" in printed and "exact match    33.33" in printed
    assert "eight   95.00  Plants and Animals" in printed and "not stemmed" in printed
    assert json.loads(out.read_text()) == scores

    bad = write_jsonl(tmp_path / "bad.jsonl", [{"question_id": 9, "text": "x"}])
    with pytest.raises(SystemExit) as stopped:
        main(["--answers", str(bad), "--annotations", str(annotations)])
    assert stopped.value.code == 2
    assert "questions not in the annotations: 9" in capsys.readouterr().err


def test_records_equal_score_predictions_input(answers, annotations):
    records = build_records(load_answers(answers), load_annotations(annotations))
    assert [r["question_id"] for r in records] == ["1", "2", "3"]
    assert score_files(answers, annotations)["vqa_accuracy"] == score_predictions(records)["vqa_accuracy"]


def test_model_vqa_answers_score_as_the_training_evaluation_scores_them(tiny_llava_dir, colour_vqa_dir, tmp_path):
    """One model, two paths: offline answering + this scorer, and the in-training evaluator."""
    from llava.conversation import template_for_version
    from llava.eval.model_vqa import main as answer_offline
    from llava.model import LlavaLlamaForCausalLM
    from llava.train.evaluation import LLaVAEvaluator, generation_items
    from llava.train.model_setup import load_tokenizer

    entries = [entry for entry in json.loads((colour_vqa_dir / "train.json").read_text()) if "image" in entry][:8]
    questions = write_jsonl(
        tmp_path / "questions.jsonl",
        [
            {
                "question_id": e["id"],
                "image": e["image"],
                "text": e["conversations"][0]["value"].replace("<image>\n", ""),
            }
            for e in entries
        ],
    )
    answers = answer_offline(
        [
            "--model-path",
            str(tiny_llava_dir),
            "--question-file",
            str(questions),
            "--image-folder",
            str(colour_vqa_dir / "images"),
            "--answers-file",
            str(tmp_path / "answers.jsonl"),
            "--conv-mode",
            "vicuna_v1",
            "--temperature",
            "0",
            "--max-new-tokens",
            "6",
            "--device",
            "cpu",
            "--batch-size",
            "4",
        ]
    )
    # A random model answers nonsense: give question k (k mod 4) copies of its answer among
    # the ten, so the scores span 0, 0.3, 0.6 and 0.9 and two categories.
    predicted = load_answers(answers)
    for index, entry in enumerate(entries):
        entry["question_type"] = ("one", "two")[index % 2]
        entry["answers"] = [predicted[entry["id"]]] * (index % 4) + ["blue"] * (10 - index % 4)
    annotations = tmp_path / "val_annotations.json"
    annotations.write_text(
        json.dumps(
            {
                "format": "llava-okvqa-annotations/1",
                "split": "val",
                "questions": {
                    e["id"]: {"question": "", "answers": e["answers"], "question_type": e["question_type"]}
                    for e in entries
                },
            }
        )
    )
    offline = score_files(answers, annotations)

    tokenizer = load_tokenizer(
        SimpleNamespace(model_name_or_path=str(tiny_llava_dir)), SimpleNamespace(cache_dir=None, model_max_length=512)
    )
    model = LlavaLlamaForCausalLM.from_pretrained(str(tiny_llava_dir))
    model.get_vision_tower().load_model()
    data_args = SimpleNamespace(is_multimodal=True, mm_use_im_start_end=False)
    evaluator = LLaVAEvaluator(
        tokenizer,
        generation_items(entries, template_for_version("v1"), data_args),
        image_folder=str(colour_vqa_dir / "images"),
        image_processor=model.get_vision_tower().image_processor,
        image_aspect_ratio=model.config.image_aspect_ratio,
        batch_size=3,
        max_new_tokens=6,
    )
    metrics = evaluator.evaluate(model)
    assert [r["prediction"] for r in evaluator.last_records] == list(predicted.values())
    assert 0 < offline["vqa_accuracy"] < 100
    assert metrics["vqa_accuracy"] == offline["vqa_accuracy"]
    assert metrics["exact_match"] == offline["exact_match"]
    assert {f"vqa_accuracy/{k}": v for k, v in offline["per_category"].items()} == {
        k: v for k, v in metrics.items() if k.startswith("vqa_accuracy/")
    }


def test_help_offers_only_what_eval_okvqa_does():
    """No --task here: the description points to eval_vqa for multiple choice instead of promising it."""
    from llava.eval.eval_okvqa import build_parser

    text = build_parser().format_help()
    assert "--task" not in text.split("(multiple choice:")[0]
    assert "python -m llava.eval.eval_vqa --task multiple-choice" in text
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--answers", "a", "--annotations", "b", "--task", "direct"])
