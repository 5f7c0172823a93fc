"""The converters' outputs: the evaluation subset, LLaVA records, split statistics, the file set in ``--out``.

Every converter writes the same files (docs/CUSTOM_DATA.md), atomically and
byte-identical on a rerun.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from llava.constants import DEFAULT_IMAGE_TOKEN
from llava.data.conversion import (
    OUTPUT_FILES,
    ConversionError,
    Sample,
    dump_json_lines,
    human_turn,
    question_text,
)
from llava.metrics.annotations import ANNOTATIONS_FORMAT
from llava.utils import write_atomic


def carve_subset(samples: list[Sample], size: int, seed: int) -> tuple[list[Sample], list[Sample]]:
    """(subset, rest): whole images drawn with ``seed`` until ``size`` questions, never more.

    Image keys are sorted, shuffled with random.Random(seed); an image whose
    questions would overshoot ``size`` is passed over, so the subset has exactly
    ``size`` questions whenever the image groups allow it, and no image is split
    between subset and rest.
    """
    by_image: dict[Any, list[Sample]] = {}
    for sample in samples:
        by_image.setdefault(sample.image_key, []).append(sample)
    order = sorted(by_image)
    random.Random(seed).shuffle(order)
    chosen: set[Any] = set()
    total = 0
    for key in order:
        count = len(by_image[key])
        if total + count <= size:
            chosen.add(key)
            total += count
            if total == size:
                break
    subset = [s for s in samples if s.image_key in chosen]
    rest = [s for s in samples if s.image_key not in chosen]
    return subset, rest


def with_val_subset(
    kept: dict[str, list[Sample]], val_size: int, val_from: str, seed: int
) -> tuple[dict[str, list[Sample]], dict[str, Any] | None]:
    """The outputs with val_subset carved out of ``val_from`` (and taken out of train when from train)."""
    outputs = dict(kept)
    if not val_size:
        return outputs, None
    pool = kept[val_from]
    if val_from == "train" and val_size >= len(pool):
        raise ConversionError(
            f"--val-size {val_size} leaves nothing of the {len(pool)} train questions; train must keep some"
        )
    if val_size > len(pool):
        raise ConversionError(f"--val-size {val_size} is more than the {len(pool)} val questions available")
    subset, rest = carve_subset(pool, val_size, seed)
    outputs["val_subset"] = subset
    if val_from == "train":
        outputs["train"] = rest
    summary = {"from": val_from, "seed": seed, "requested": val_size, "size": len(subset)}
    return outputs, summary


def record(sample: Sample, suffix: str) -> dict[str, Any]:
    """One sample in LLaVA training format (fixed key order)."""
    human = human_turn(sample.question, suffix)
    if not human.startswith(DEFAULT_IMAGE_TOKEN):  # the contract the trainer relies on
        raise AssertionError(f"human turn without {DEFAULT_IMAGE_TOKEN} for question {sample.question_id}")
    return {
        "id": str(sample.question_id),
        "image": sample.image,
        "conversations": [
            {"from": "human", "value": human},
            {"from": "gpt", "value": sample.target},
        ],
        "question_id": sample.question_id,
        "answers": list(sample.answers or []),
        "question_type": sample.question_type,
        **sample.extra,
    }


def split_stats(samples: list[Sample], category_order: Sequence[str] = ()) -> dict[str, Any]:
    """Questions, distinct images, questions per category, target length in words."""
    categories = Counter(str(s.question_type) for s in samples)
    known = [code for code in category_order if code in categories]
    others = sorted(code for code in categories if code not in category_order)
    words = Counter(len(s.target.split()) for s in samples)
    return {
        "questions": len(samples),
        "images": len({s.image_key for s in samples}),
        "per_category": {code: categories[code] for code in known + others},
        "target_words": {str(length): words[length] for length in sorted(words)},
    }


def write_outputs(
    out_dir: Path,
    outputs: dict[str, list[Sample]],
    suffix: str,
    val_split_name: str,
    annotation_fields: Sequence[str] = (),
    mc_prompt: Callable[[Sample], str] | None = None,
) -> dict[str, str]:
    """Write the JSON outputs atomically, remove stale ones; returns kind -> file name.

    ``annotation_fields``: extra keys of ``Sample.extra`` copied into each
    val_annotations entry; ``mc_prompt``: also write val_questions_mc.jsonl with
    that question text.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, str] = {}
    for name in ("train", "val", "val_subset"):
        if name in outputs:
            written[name] = f"{name}.json"
            write_atomic(out_dir / written[name], dump_json_lines([record(s, suffix) for s in outputs[name]]))
    if "val" in outputs:
        val = outputs["val"]

        def question_lines(text: Callable[[Sample], str]) -> str:
            return "".join(
                json.dumps(
                    {"question_id": s.question_id, "image": s.image, "text": text(s)},
                    ensure_ascii=False,
                )
                + "\n"
                for s in val
            )

        written["val_questions"] = "val_questions.jsonl"
        write_atomic(
            out_dir / written["val_questions"],
            question_lines(lambda s: question_text(s.question, suffix)),
        )
        if mc_prompt is not None:
            written["val_questions_mc"] = "val_questions_mc.jsonl"
            write_atomic(out_dir / written["val_questions_mc"], question_lines(mc_prompt))
        # {"format": ..., "split": ..., "questions": {id: {...}, one question per line}}
        entries = [
            json.dumps(str(s.question_id))
            + ": "
            + json.dumps(
                {
                    "question": s.question,
                    "answers": list(s.answers or []),
                    "question_type": s.question_type,
                    **{key: s.extra[key] for key in annotation_fields},
                },
                ensure_ascii=False,
            )
            for s in val
        ]
        header = json.dumps({"format": ANNOTATIONS_FORMAT, "split": val_split_name})[:-1]
        body = "{\n" + ",\n".join(entries) + "\n}" if entries else "{}"
        written["val_annotations"] = "val_annotations.json"
        write_atomic(out_dir / written["val_annotations"], f'{header}, "questions": {body}}}\n')
    written["summary"] = "summary.json"
    for name in OUTPUT_FILES:
        if name not in written.values() and (out_dir / name).is_file():
            (out_dir / name).unlink()  # stale output of an earlier run with other options
    return written
