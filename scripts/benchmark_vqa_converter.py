"""Time the generic VQA converter on 100,000 generated rows (not a test; the target is < 10 s).

Builds, in a temporary folder, a spreadsheet of --rows questions (four per
image, answers one string or a JSON list of three) with one small JPEG per
image (hard links of a few files, so setting up is quick), then times
``python -m llava.data.vqa`` without the image check (``--no-image-check``: the
file is read, every row validated, the presence of every image checked, the
split drawn and every output written), best of --repeats. --format parquet
times the same rows from a Parquet file; --image-check also times the decode.

Run::

    python scripts/benchmark_vqa_converter.py
    python scripts/benchmark_vqa_converter.py --rows 100000 --format parquet --repeats 3
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from llava.data.vqa import VqaConfig, convert  # noqa: E402

WORDS = "dog cat red blue skiing surfing ford toyota pizza banana hot dog new york tennis".split()
QUESTIONS_PER_IMAGE = 4


def build(folder: Path, rows: int, fmt: str) -> Path:
    """The images and the input file; returns the input path."""
    images = folder / "images"
    images.mkdir(parents=True)
    originals = []
    for index in range(8):
        buffer = io.BytesIO()
        Image.new("RGB", (32, 24), (index * 30, 80, 120)).save(buffer, format="JPEG")
        path = folder / f"original{index}.jpg"
        path.write_bytes(buffer.getvalue())
        originals.append(path)
    records = []
    for row in range(rows):
        image = row // QUESTIONS_PER_IMAGE
        name = f"images/{image:07d}.jpg"
        if row % QUESTIONS_PER_IMAGE == 0:
            os.link(originals[image % len(originals)], folder / name)
        answer = WORDS[row % len(WORDS)]
        cell = json.dumps([answer, answer, WORDS[(row + 1) % len(WORDS)]]) if row % 3 == 0 else answer
        records.append((f"q{row}", name, f"What is shown in picture {image}?", cell, f"c{row % 7}"))
    header = ["id", "image", "question", "answer", "category"]
    if fmt == "csv":
        path = folder / "vqa.csv"
        with open(path, "w", newline="", encoding="utf-8") as stream:
            writer = csv.writer(stream)
            writer.writerow(header)
            writer.writerows(records)
        return path
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = folder / "vqa.parquet"
    pq.write_table(pa.table({name: [r[i] for r in records] for i, name in enumerate(header)}), path)
    return path


def main() -> None:
    from llava.entry import ExamplesHelpFormatter
    from llava.flags import Parser

    parser = Parser(description=__doc__, formatter_class=ExamplesHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--format", choices=("csv", "parquet"), default="csv")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--image-check", action="store_true", help="also time a run that decodes every image")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        started = time.perf_counter()
        source = build(folder, args.rows, args.format)
        print(
            f"built {args.rows} rows on {args.rows // QUESTIONS_PER_IMAGE} images "
            f"({args.format}) in {time.perf_counter() - started:.1f} s"
        )
        config = VqaConfig(
            input=[str(source)], out_dir=str(folder / "out"), val_fraction=0.1, image_check=False, progress=False
        )
        times = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            summary = convert(config)
            times.append(time.perf_counter() - started)
        print(
            f"no image check: best {min(times):.2f} s of {args.repeats} "
            f"({args.rows / min(times):,.0f} rows/s); train {summary.splits['train']['questions']}, "
            f"val {summary.splits['val']['questions']}"
        )
        if args.image_check:
            config.image_check = True
            started = time.perf_counter()
            convert(config)
            print(f"with image check: {time.perf_counter() - started:.2f} s")


if __name__ == "__main__":
    main()
