"""Test helper: a run folder whose ``eval/`` holds three evaluations, written by the real evaluator.

``write_eval_run(run_dir, data_dir)`` draws 12 synthetic colour / shape
questions (``llava.data.synthetic``) and writes ``epoch_0`` .. ``epoch_2``
through ``LLaVAEvaluator.write_outputs`` (the files a training run writes),
with predictions that get better epoch by epoch: epoch 0 answers ``blue``
everywhere, epoch 1 gets the colour questions right, epoch 2 everything but
the last question. Returns ``(run_dir, image_folder)``.
"""

from __future__ import annotations

import json
from pathlib import Path

CATEGORY = {"colour": "three", "shape": "nine"}


def questions(data_dir: Path) -> list[dict]:
    from llava.data.synthetic import write_llava_vqa

    write_llava_vqa(data_dir, count=12, text_only=0, kinds=("colour", "shape"))
    entries = json.loads((data_dir / "train.json").read_text())
    items = []
    for index, entry in enumerate(entries):
        kind = ("colour", "shape")[index % 2]
        items.append(
            {
                "question_id": entry["id"],
                "image": entry["image"],
                "question": entry["conversations"][0]["value"].replace("<image>\n", "").splitlines()[0],
                "truth": entry["conversations"][1]["value"],
                "kind": kind,
                "answers": [entry["conversations"][1]["value"]] * 7 + ["something else"] * 3,
            }
        )
    return items


def prediction(item: dict, epoch: int, last: bool) -> str:
    if epoch == 0:
        return "blue"
    if epoch == 1:
        return item["truth"] if item["kind"] == "colour" else "circle"
    return "unsure" if last else item["truth"]


def write_eval_run(run_dir: Path, data_dir: Path) -> tuple[Path, Path]:
    from llava.eval.vqa_accuracy import exact_match, score_predictions, vqa_accuracy
    from llava.train.evaluation import LLaVAEvaluator

    items = questions(data_dir)
    evaluator = LLaVAEvaluator(None, [], image_folder=None, output_dir=run_dir)
    for epoch in range(3):
        records = []
        for position, item in enumerate(items):
            text = prediction(item, epoch, position == len(items) - 1)
            records.append(
                {
                    "question_id": item["question_id"],
                    "question": item["question"],
                    "image": item["image"],
                    "prediction": text,
                    "answers": item["answers"],
                    "question_type": CATEGORY[item["kind"]],
                    "vqa_accuracy": vqa_accuracy(text, item["answers"]),
                    "exact_match": exact_match(text, item["answers"]),
                }
            )
        evaluator.last_records = records
        evaluator.write_outputs(float(epoch), epoch * 3, 2.0 - 0.5 * epoch, score_predictions(records))
    return run_dir, data_dir / "images"
