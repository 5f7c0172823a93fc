"""Tests for the generic VQA converter (llava.data.vqa): every input format gives the same records,
columns by name or flag, answers as strings or lists, images as paths or bytes, the split by image,
every bad row reported at once, skip flags, and byte-identical reruns."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from llava.data.vqa import ConversionError, VqaConfig, convert, main

SUFFIX = "Answer the question using a single word or phrase."
# (id, image, question, answer cell, category); img2 carries two questions.
ROWS = [
    ("a1", "img1.jpg", "What colour is it?", "Red", "colour"),
    ("a2", "img2.jpg", "What shape is it?", '["circle", "circle", "round"]', "shape"),
    ("a3", "img2.jpg", "What colour is the circle?", '["blue", "Blue", "blue", "navy"]', "colour"),
    ("a4", "img3.jpg", "How many sides?", "4", "shape"),
]
TARGETS = {"a1": "Red", "a2": "circle", "a3": "blue", "a4": "4"}  # as written, not normalised


def jpeg(seed: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (seed * 60 % 256, 10, 10)).save(buffer, format="JPEG")
    return buffer.getvalue()


def write_images(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for index in (1, 2, 3):
        (folder / f"img{index}.jpg").write_bytes(jpeg(index))


def as_dicts(rows=ROWS, image_key="image") -> list[dict]:
    out = []
    for qid, image, question, answer, category in rows:
        value = json.loads(answer) if answer.startswith("[") else answer
        out.append(
            {
                "question_id": qid,
                image_key: image,
                "question": question,
                "answers": value,
                "category": category,
            }
        )
    return out


def write_csv(path: Path, rows=ROWS, header=("id", "image", "question", "answer", "category"), delimiter=","):
    with open(path, "w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def arrow_table(rows=ROWS, embedded: bool = True):
    import pyarrow as pa

    dicts = as_dicts(rows)
    image_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    images = [
        {"bytes": jpeg(int(d["image"][3])), "path": None} if embedded else {"bytes": None, "path": d["image"]}
        for d in dicts
    ]
    return pa.table(
        {
            "question_id": [d["question_id"] for d in dicts],
            "image": pa.array(images, type=image_type),
            "question": [d["question"] for d in dicts],
            "answers": [d["answers"] if isinstance(d["answers"], list) else [d["answers"]] for d in dicts],
            "category": [d["category"] for d in dicts],
        }
    )


def run(out: Path, *inputs, **options):
    config = VqaConfig(input=[str(p) for p in inputs], out_dir=str(out), progress=False, **options)
    return convert(config)


def load(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))


def by_id(out: Path) -> dict:
    records = load(out / "train.json") + (load(out / "val.json") if (out / "val.json").exists() else [])
    return {r["question_id"]: r for r in records}


@pytest.fixture()
def data(tmp_path) -> Path:
    folder = tmp_path / "data"
    write_images(folder)
    return folder


def test_csv_writes_exact_records_with_relative_images(data, tmp_path):
    out = tmp_path / "out"
    summary = run(out, write_csv(data / "vqa.csv"))
    train = load(out / "train.json")
    assert train[1] == {
        "id": "a2",
        "image": "img2.jpg",
        "conversations": [
            {"from": "human", "value": f"<image>\nWhat shape is it?\n{SUFFIX}"},
            {"from": "gpt", "value": "circle"},
        ],
        "question_id": "a2",
        "answers": ["circle", "circle", "round"],
        "question_type": "shape",
    }
    assert {r["question_id"]: r["conversations"][1]["value"] for r in train} == TARGETS
    assert train[0]["answers"] == ["Red"] and train[3]["question_id"] == "a4"
    assert summary.image_folder == str(data.resolve())
    assert summary.splits["train"]["images"] == 3
    assert sorted(p.name for p in out.iterdir()) == ["summary.json", "train.json"]


@pytest.mark.parametrize(
    "fmt",
    [
        "json",
        "jsonl",
        "tsv",
        "parquet-bytes",
        "arrow-paths",
        "save_to_disk",
        "imagefolder-jsonl",
        "imagefolder-csv",
    ],
)
def test_every_input_format_gives_the_same_records(data, tmp_path, fmt):
    import pyarrow as pa
    import pyarrow.parquet as pq

    expected_out = tmp_path / "expected"
    run(expected_out, write_csv(data / "vqa.csv"))
    expected = by_id(expected_out)
    if fmt == "json":
        (data / "vqa.json").write_text(json.dumps(as_dicts()))
        source = data / "vqa.json"
    elif fmt == "jsonl":
        source = data / "vqa.jsonl"
        source.write_text("".join(json.dumps(d) + "\n" for d in as_dicts()))
    elif fmt == "tsv":
        source = write_csv(data / "vqa.tsv", delimiter="\t")
    elif fmt == "parquet-bytes":
        source = tmp_path / "elsewhere" / "vqa.parquet"
        source.parent.mkdir()
        pq.write_table(arrow_table(), source, row_group_size=2)
    elif fmt == "arrow-paths":
        source = data / "vqa.arrow"
        with (
            pa.OSFile(str(source), "wb") as sink,
            pa.ipc.new_file(sink, arrow_table().schema) as writer,
        ):
            writer.write_table(arrow_table(embedded=False))
    elif fmt == "save_to_disk":
        source = tmp_path / "saved"
        source.mkdir()
        with pa.OSFile(str(source / "data-00000-of-00001.arrow"), "wb") as sink:
            with pa.ipc.new_stream(sink, arrow_table().schema) as writer:
                writer.write_table(arrow_table(), max_chunksize=3)
        (source / "state.json").write_text(json.dumps({"_data_files": [{"filename": "data-00000-of-00001.arrow"}]}))
        (source / "dataset_info.json").write_text("{}")
    elif fmt == "imagefolder-jsonl":
        (data / "metadata.jsonl").write_text("".join(json.dumps(d) + "\n" for d in as_dicts(image_key="file_name")))
        source = data
    else:
        write_csv(data / "metadata.csv", header=("id", "file_name", "question", "answer", "category"))
        source = data
    out = tmp_path / "out"
    summary = run(out, source)
    records = by_id(out)
    assert set(records) == set(expected)
    for qid, record in records.items():
        if fmt in ("parquet-bytes", "save_to_disk"):  # embedded images: named by content hash
            assert record["image"].endswith(".jpg") and len(record["image"]) == 20
            assert (out / "images" / record["image"]).read_bytes() == jpeg(int(expected[qid]["image"][3]))
            record = {**record, "image": expected[qid]["image"]}
        assert record == expected[qid]
    if fmt in ("parquet-bytes", "save_to_disk"):
        assert summary.image_folder == str((out / "images").resolve())
        assert summary.splits["train"]["images"] == 3  # two rows share img2's bytes


def test_split_by_image_is_seeded_and_disjoint(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    rows = []
    for image in range(20):
        (data / f"{image}.jpg").write_bytes(jpeg(image))
        rows += [(f"q{image}-{k}", f"{image}.jpg", f"Question {k}?", "yes", "") for k in range(1 + image % 3)]
    source = write_csv(data / "vqa.csv", rows)
    first = run(tmp_path / "a", source, val_fraction=0.25, seed=1, val_size=4, image_check=False)
    train, val = load(tmp_path / "a" / "train.json"), load(tmp_path / "a" / "val.json")
    assert len(val) == round(0.25 * len(rows)) and len(train) + len(val) == len(rows)
    assert not {r["image"] for r in train} & {r["image"] for r in val}
    subset = load(tmp_path / "a" / "val_subset.json")
    assert len(subset) == 4 and {r["id"] for r in subset} <= {r["id"] for r in val}
    assert first.val_subset == {"from": "val", "seed": 1, "requested": 4, "size": 4}
    run(tmp_path / "b", source, val_fraction=0.25, seed=1, val_size=4, image_check=False)
    run(tmp_path / "c", source, val_fraction=0.25, seed=2, val_size=4, image_check=False)
    assert load(tmp_path / "b" / "val.json") == val
    assert load(tmp_path / "c" / "val.json") != val
    questions = (tmp_path / "a" / "val_questions.jsonl").read_text().splitlines()
    assert json.loads(questions[0])["text"] == f"{val[0]['conversations'][0]['value'][8:]}"
    annotations = load(tmp_path / "a" / "val_annotations.json")
    assert annotations["split"] == "val" and list(annotations["questions"]) == [r["id"] for r in val]


def test_rerun_is_byte_identical(data, tmp_path):
    import pyarrow.parquet as pq

    source = data / "vqa.parquet"
    pq.write_table(arrow_table(), source)
    out = tmp_path / "out"
    run(out, source, val_fraction=0.5)
    first = {p.name: p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    run(out, source, val_fraction=0.5)
    assert {p.name: p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()} == first
    assert not [p for p in out.rglob("*.tmp")]


def test_a_csv_with_only_a_header_says_it_has_no_rows(data, tmp_path):
    source = write_csv(data / "header.csv", rows=[])
    with pytest.raises(ConversionError, match="header.csv: no rows, nothing to convert"):
        run(tmp_path / "out", source)


def test_a_csv_field_longer_than_pyarrows_block_is_read(data, tmp_path):
    """pyarrow reads CSV in 1 MB blocks and fails on a longer field; the reader sizes the block."""
    rows = [(*row, "x" * (3 << 20) if index == 1 else "") for index, row in enumerate(ROWS)]
    source = write_csv(data / "notes.csv", rows, header=("id", "image", "question", "answer", "category", "notes"))
    summary = run(tmp_path / "out", source, val_fraction=0.0)
    assert summary.splits["train"]["questions"] == len(ROWS)


def test_a_failed_conversion_leaves_no_extracted_picture(data, tmp_path):
    """Embedded pictures are written before the last checks; when those fail, they go again."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = arrow_table()
    images = table.column("image").to_pylist()
    images[-1] = {"bytes": b"not a picture", "path": None}  # found only while extracting
    table = table.set_column(
        table.schema.get_field_index("image"), "image", pa.array(images, type=table.schema.field("image").type)
    )
    source = data / "broken.parquet"
    pq.write_table(table, source)
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("the user's")
    with pytest.raises(ConversionError, match="image"):
        run(out, source, val_fraction=0.5)
    assert sorted(p.name for p in out.rglob("*")) == ["keep.txt"]


def test_columns_by_flag_and_missing_columns_named(data, tmp_path):
    source = write_csv(data / "odd.csv", header=("key", "picture", "ask", "reply", "group"))
    with pytest.raises(ConversionError) as raised:
        run(tmp_path / "out", source)
    message = str(raised.value)
    assert "no image column" in message and "no question column" in message and "no answer column" in message
    assert "it has key, picture, ask, reply, group" in message and "--image-column" in message
    run(
        tmp_path / "out",
        source,
        image_column="picture",
        question_column="ask",
        answer_column="reply",
        id_column="key",
        category_column="group",
    )
    assert {r["question_id"]: r["conversations"][1]["value"] for r in load(tmp_path / "out" / "train.json")} == TARGETS
    with pytest.raises(ConversionError, match="no column 'nope' \\(--id-column\\)"):
        run(
            tmp_path / "out2",
            source,
            image_column="picture",
            question_column="ask",
            answer_column="reply",
            id_column="nope",
        )


def test_rows_without_ids_are_numbered(data, tmp_path):
    source = write_csv(
        data / "vqa.csv",
        [row[1:] for row in ROWS],
        header=("image", "question", "answer", "category"),
    )
    run(tmp_path / "out", source)
    assert [r["question_id"] for r in load(tmp_path / "out" / "train.json")] == [0, 1, 2, 3]


def bad_rows(data: Path) -> list[tuple]:
    (data / "broken.jpg").write_bytes(b"not a picture")
    return [
        *ROWS,
        ("b1", "missing.jpg", "Where is it?", "here", ""),
        ("b2", "broken.jpg", "What is it?", "junk", ""),
        ("b3", "img1.jpg", "  ", "red", ""),
        ("b4", "img1.jpg", "What <image> is it?", "red", ""),
        ("b5", "img1.jpg", "What colour?", "", ""),
        ("b6", "img1.jpg", "What colour?", "[]", ""),
        ("a1", "img3.jpg", "Repeated id?", "yes", ""),
        ("b7", "", "No image?", "yes", ""),
    ]


def test_every_problem_is_reported_at_once_by_row_and_id(data, tmp_path, capsys):
    source = write_csv(data / "vqa.csv", bad_rows(data))
    out = tmp_path / "out"
    assert main(["--input", str(source), "--out", str(out), "--no-progress"]) == 1
    error = capsys.readouterr().err
    for text in (
        "VQA conversion failed: 8 problems",
        "questions with no text, an '<image>' tag or no image id",
        "row 8 id b3 (empty question)",
        "row 9 id b4 (<image> in the question)",
        ": row 10 id b5, row 11 id b6",
        "(repeated in the all split): row 12 id a1",
        "row 6 id b1 (missing.jpg missing)",
        "row 7 id b2 (broken.jpg unreadable",
        "row 13 id b7 (no image in the row)",
        str(source),
        "--skip-bad-answers --skip-bad-questions --skip-duplicates --skip-bad-images",
    ):
        assert text in error, text
    assert not out.exists()


def test_skip_flags_drop_and_count(data, tmp_path, capsys):
    source = write_csv(data / "vqa.csv", bad_rows(data))
    out = tmp_path / "out"
    flags = ["--skip-bad-questions", "--skip-bad-answers", "--skip-duplicates", "--skip-bad-images"]
    assert main(["--input", str(source), "--out", str(out), "--no-progress", *flags]) == 0
    assert "skipped 3 questions whose image is missing or unreadable (--skip-bad-images)" in capsys.readouterr().out
    assert [r["question_id"] for r in load(out / "train.json")] == ["a1", "a2", "a3", "a4"]
    skipped = load(out / "summary.json")["skipped"]
    assert {kind: entry["count"] for kind, entry in skipped.items()} == {
        "bad_answers": 2,
        "bad_question": 2,
        "duplicate_id": 1,
        "bad_image": 3,
    }


def test_no_image_check_still_finds_missing_images(data, tmp_path):
    (data / "broken.jpg").write_bytes(b"not a picture")
    rows = [*ROWS, ("b2", "broken.jpg", "What is it?", "junk", "")]
    summary = run(tmp_path / "out", write_csv(data / "vqa.csv", rows), image_check=False)
    assert summary.image_check == "presence only" and summary.splits["train"]["questions"] == 5
    with pytest.raises(ConversionError, match="missing"):
        run(
            tmp_path / "out",
            write_csv(data / "v2.csv", [*ROWS, ("x", "gone.jpg", "Q?", "yes", "")]),
            image_check=False,
        )


def test_own_splits_and_shared_images(data, tmp_path):
    train = write_csv(data / "train.csv", ROWS[:3])
    val = write_csv(data / "val.csv", ROWS[3:] + [("v2", "img2.jpg", "Is it round?", "yes", "")])
    config = dict(splits=[f"train={train}", f"val={val}"], out_dir=str(tmp_path / "out"), progress=False)
    with pytest.raises(ConversionError) as raised:
        convert(VqaConfig(**config))
    assert "train questions on an image that val also uses" in str(raised.value)
    assert ": row 3 id a2, row 4 id a3" in str(raised.value)
    summary = convert(VqaConfig(**config, skip_shared_images=True))
    assert summary.splits["train"]["questions"] == 1 and summary.splits["val"]["questions"] == 2
    assert summary.splits["val_subset"]["questions"] == 2


def test_option_problems_are_reported_together(tmp_path):
    with pytest.raises(ConversionError) as raised:
        convert(
            VqaConfig(
                input=[str(tmp_path / "nothing.csv")],
                splits=["dev=x"],
                val_fraction=1.5,
                val_size=-1,
                out_dir=str(tmp_path / "out"),
            )
        )
    message = str(raised.value)
    for text in (
        "not both",
        "train=PATH or val=PATH, got 'dev=x'",
        "--val-fraction must be in [0, 1)",
        "--val-size must be 0 or more",
        "missing input",
    ):
        assert text in message


def test_dataset_dict_folder_says_how_to_give_its_splits(tmp_path):
    folder = tmp_path / "dd"
    folder.mkdir()
    (folder / "dataset_dict.json").write_text(json.dumps({"splits": ["train", "validation"]}))
    with pytest.raises(ConversionError, match=f"--splits train={folder / 'train'} val={folder / 'validation'}"):
        run(tmp_path / "out", folder)


def test_help_lists_the_flags_generated_from_the_config():
    result = subprocess.run(
        [sys.executable, "-m", "llava.data.vqa", "--help"],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    for text in (
        "--input",
        "--splits",
        "--image-column",
        "--answer-column",
        "--val-fraction",
        "--skip-bad-images",
        "--no-image-check",
        "examples:",
    ):
        assert text in result.stdout


def test_the_synthetic_spreadsheet_converts(tmp_path):
    from llava.data.synthetic import write_csv_layout

    folder = write_csv_layout(tmp_path / "raw", images=10)
    summary = run(tmp_path / "out", folder / "vqa.csv", val_fraction=0.2, val_size=2)
    assert summary.splits["train"] == {
        "questions": 16,
        "images": 8,
        "per_category": {"colour": 8, "shape": 8},
        "target_words": {"1": 16},
    }
    assert summary.splits["val"]["images"] == 2 and summary.splits["val_subset"]["questions"] == 2
    first = load(tmp_path / "out" / "train.json")[0]
    assert first["image"] == "images/00000.jpg" and len(first["answers"]) == 3  # a JSON list in the cell
