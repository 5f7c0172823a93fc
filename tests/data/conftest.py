"""Fixtures for the OK-VQA converter tests: tiny datasets in the official and export layouts.

Everything is generated in the test process (8x8 JPEGs drawn with PIL, JSON
and parquet written on the spot); nothing is downloaded.
"""

from __future__ import annotations

import io
import json
import types
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from PIL import Image

# Default content: (question_id, image_id, question, answers, question_type) per split.
# Targets (the winning group's most frequent raw spelling): skiing, Sunny (tie with "clear"
# broken by the raw count), Ford, four, race, dogs (tie with "dog" broken by first occurrence),
# hot-dog.
TRAIN_ROWS = [
    (1230, 123, "What sport is this?", ["skiing"] * 6 + ["ski"] * 2 + ["snow"] * 2, "four"),
    (
        1231,
        123,
        "What is the weather like?",
        ["Sunny"] * 4 + ["clear", "clear", "Clear", "clear"] + ["hot", "warm"],
        "ten",
    ),
    (
        4560,
        456,
        "Which company makes this vehicle?",
        ["Ford"] * 5 + ["the ford"] * 3 + ["toyota"] * 2,
        "one",
    ),
    (7890, 789, "How many wheels does it have?", ["four"] * 7 + ["4"] * 3, "one"),
]
VAL_ROWS = [
    (
        2971475,
        297147,
        "What sport can you use this for?",
        ["race"] * 6 + ["motocross"] * 2 + ["ride"] * 2,
        "one",
    ),
    (1110, 111, "What animal is this?", ["dogs"] * 5 + ["dog"] * 5, "eight"),
    (
        2220,
        222,
        "What is in the bowl?",
        ["hot-dog"] * 4 + ["hot dog"] * 3 + ["sausage"] * 3,
        "five",
    ),
]
COCO_SPLITS = {"train": "train2014", "val": "val2014"}


def jpeg_bytes(seed: int, size: tuple[int, int] = (8, 8)) -> bytes:
    """A tiny JPEG whose colour depends on ``seed``."""
    buffer = io.BytesIO()
    colour = (seed * 37 % 256, seed * 91 % 256, seed * 53 % 256)
    Image.new("RGB", size, colour).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def png_bytes(seed: int) -> bytes:
    """A tiny PNG (some exports embed PNG)."""
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (seed % 256, 0, 0)).save(buffer, format="PNG")
    return buffer.getvalue()


def coco_name(split: str, image_id: int) -> str:
    """COCO_train2014_000000000123.jpg."""
    return f"COCO_{COCO_SPLITS[split]}_{image_id:012d}.jpg"


def annotation(question_id, image_id, answers, question_type="one") -> dict:
    """An official annotation entry with answer dicts as in OK-VQA v1.1."""
    return {
        "image_id": image_id,
        "question_id": question_id,
        "question_type": question_type,
        "answer_type": "other",
        "confidence": 3,
        "answers": [
            {"answer": text, "raw_answer": text, "answer_confidence": "yes", "answer_id": i + 1}
            for i, text in enumerate(answers)
        ],
    }


@dataclass
class OfficialData:
    """An OK-VQA folder and a COCO folder; edit the lists, then call write()."""

    okvqa_dir: Path
    coco_dir: Path
    questions: dict[str, list[dict]] = field(default_factory=dict)
    annotations: dict[str, list[dict]] = field(default_factory=dict)

    def write(self) -> OfficialData:
        """Write the four JSON files under their official names."""
        for split, coco in COCO_SPLITS.items():
            questions = {"info": {}, "data_subtype": coco, "questions": self.questions[split]}
            annotations = {"info": {}, "data_subtype": coco, "annotations": self.annotations[split]}
            (self.okvqa_dir / f"OpenEnded_mscoco_{coco}_questions.json").write_text(json.dumps(questions))
            (self.okvqa_dir / f"mscoco_{coco}_annotations.json").write_text(json.dumps(annotations))
        return self

    def image_path(self, split: str, image_id: int) -> Path:
        """Where the COCO image of ``image_id`` lives."""
        return self.coco_dir / COCO_SPLITS[split] / coco_name(split, image_id)

    def add(self, split: str, question_id, image_id, question, answers, question_type="one", image=True):
        """Add a question with its annotation (and its image unless image=False)."""
        self.questions[split].append({"image_id": image_id, "question": question, "question_id": question_id})
        self.annotations[split].append(annotation(question_id, image_id, answers, question_type))
        if image:
            self.image_path(split, image_id).write_bytes(jpeg_bytes(image_id))


def build_official(root: Path, rows: dict[str, list] | None = None) -> OfficialData:
    """An official-layout dataset under ``root`` (default content: TRAIN_ROWS and VAL_ROWS)."""
    rows = rows if rows is not None else {"train": TRAIN_ROWS, "val": VAL_ROWS}
    data = OfficialData(root / "okvqa", root / "coco")
    data.okvqa_dir.mkdir(parents=True)
    for split, coco in COCO_SPLITS.items():
        (data.coco_dir / coco).mkdir(parents=True)
        data.questions[split] = []
        data.annotations[split] = []
        for question_id, image_id, question, answers, question_type in rows.get(split, []):
            data.add(split, question_id, image_id, question, answers, question_type)
    return data.write()


@pytest.fixture()
def official(tmp_path) -> OfficialData:
    """The default official-layout dataset (4 train questions on 3 images, 3 val questions)."""
    return build_official(tmp_path)


def write_export(path: Path, layout: str, split: str, rows=None, image_bytes=None, fmt: str = "parquet") -> Path:
    """Write rows as a Hugging Face export in one of the three layouts of docs/OKVQA.md.

    layout: 'fatima' (Multimodal-Fatima/OK-VQA_*), 'm4' (HuggingFaceM4/OK-VQA) or
    'lmms' (lmms-lab/OK-VQA). image_bytes maps image_id -> bytes (default: jpeg_bytes(id)).
    fmt: 'parquet', 'arrow-file' or 'arrow-stream'.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = rows if rows is not None else (TRAIN_ROWS if split == "train" else VAL_ROWS)
    image_bytes = image_bytes or {}
    images = [{"bytes": image_bytes.get(image_id, jpeg_bytes(image_id)), "path": None} for _, image_id, _, _, _ in rows]
    image_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    answer_type = pa.struct(
        [
            ("answer", pa.string()),
            ("raw_answer", pa.string()),
            ("answer_confidence", pa.string()),
            ("answer_id", pa.int64()),
        ]
    )
    answer_dicts = [annotation(q, i, a)["answers"] for q, i, _, a, _ in rows]
    columns: dict[str, pa.Array] = {"image": pa.array(images, type=image_type)}
    columns["question"] = pa.array([question for _, _, question, _, _ in rows])
    if layout == "fatima":
        columns["question_id"] = pa.array([q for q, _, _, _, _ in rows], type=pa.int64())
        columns["id_image"] = pa.array([i for _, i, _, _, _ in rows], type=pa.int64())
        columns["answers"] = pa.array([a for _, _, _, a, _ in rows])
        columns["answers_original"] = pa.array(answer_dicts, type=pa.list_(answer_type))
        columns["blip_caption"] = pa.array(["a picture"] * len(rows))
    elif layout == "m4":
        columns["question_id"] = pa.array([q for q, _, _, _, _ in rows], type=pa.int64())
        columns["image_id"] = pa.array([i for _, i, _, _, _ in rows], type=pa.int64())
        columns["answers"] = pa.array(answer_dicts, type=pa.list_(answer_type))
        columns["confidence"] = pa.array([3] * len(rows), type=pa.int64())
    elif layout == "lmms":
        columns["question_id"] = pa.array([str(q) for q, _, _, _, _ in rows])
        columns["answers"] = pa.array([a for _, _, _, a, _ in rows])
    else:
        raise ValueError(layout)
    columns["question_type"] = pa.array([t for _, _, _, _, t in rows])
    columns["answer_type"] = pa.array(["other"] * len(rows))
    table = pa.table(columns)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        pq.write_table(table, path, row_group_size=2)
    else:
        with pa.OSFile(str(path), "wb") as sink:
            writer = pa.ipc.new_file if fmt == "arrow-file" else pa.ipc.new_stream
            with writer(sink, table.schema) as out:
                out.write_table(table, max_chunksize=2)
    return path


@pytest.fixture(scope="session")
def okvqa_kit() -> types.SimpleNamespace:
    """The builders and default rows above, for tests (importing conftest by name is fragile)."""
    return types.SimpleNamespace(
        TRAIN_ROWS=TRAIN_ROWS,
        VAL_ROWS=VAL_ROWS,
        build_official=build_official,
        coco_name=coco_name,
        jpeg_bytes=jpeg_bytes,
        png_bytes=png_bytes,
        write_export=write_export,
    )
