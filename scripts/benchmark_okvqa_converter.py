"""Time the OK-VQA converter on a generated dataset the size of OK-VQA (not a test).

Builds, in a temporary folder, the official layout with 9,009 train questions
on 8,998 images and 5,046 val questions on 5,033 images, ten answers each, and
one small generated JPEG per image; then times:

1. the conversion without the image check (``--no-image-check``: JSON in,
   JSON out, plus a presence check of every image file), best of --repeats;
2. the conversion with the image check (every image decoded in a thread
   pool), reported as images per second of the check itself;
3. optionally (--export) the same data as one parquet export per split with
   the JPEGs embedded: extraction to images/ with the check.

Run::

    python scripts/benchmark_okvqa_converter.py
    python scripts/benchmark_okvqa_converter.py --image-size 640 480 --export --workers 8
"""

from __future__ import annotations

import io
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from llava.data.okvqa import ConvertConfig, convert  # noqa: E402

# OK-VQA's sizes: (questions, images) per split.
SIZES = {"train": (9009, 8998), "val": (5046, 5033)}
COCO = {"train": "train2014", "val": "val2014"}
WORDS = "dog cat red blue skiing surfing ford toyota pizza banana hot dog new york tennis".split()
CATEGORIES = [
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "other",
]


def small_jpegs(size: tuple[int, int], count: int = 16) -> list[bytes]:
    """A few distinct noisy JPEGs (noise keeps the decoder honest), reused across images."""
    rng = random.Random(0)
    images = []
    for _ in range(count):
        image = Image.effect_noise(size, 64).convert("RGB")
        colour = Image.new("RGB", size, tuple(rng.randrange(256) for _ in range(3)))
        buffer = io.BytesIO()
        Image.blend(image, colour, 0.5).save(buffer, format="JPEG", quality=90)
        images.append(buffer.getvalue())
    return images


def build(root: Path, image_size: tuple[int, int]) -> dict:
    """Write the official-layout fixture under root; returns per-split rows for the export."""
    rng = random.Random(1234)
    jpegs = small_jpegs(image_size)
    okvqa_dir = root / "okvqa"
    okvqa_dir.mkdir(parents=True)
    rows = {}
    for offset, (split, (question_count, image_count)) in enumerate(SIZES.items()):
        (root / "coco" / COCO[split]).mkdir(parents=True)
        # COCO train2014 and val2014 ids are disjoint; so are these.
        image_ids = rng.sample(range(1 + 300_000 * offset, 300_000 * (offset + 1)), image_count)
        # every image once, then the extra questions on images already used
        owners = image_ids + rng.sample(image_ids, question_count - image_count)
        questions, annotations, split_rows = [], [], []
        used: dict[int, int] = {}
        for image_id in owners:
            k = used.get(image_id, 0)
            used[image_id] = k + 1
            question_id = image_id * 10 + k
            answers = [" ".join(rng.sample(WORDS, rng.choice((1, 1, 1, 2)))) for _ in range(10)]
            category = rng.choice(CATEGORIES)
            question = f"What is shown in picture {image_id}?"
            questions.append({"image_id": image_id, "question": question, "question_id": question_id})
            annotations.append(
                {
                    "image_id": image_id,
                    "question_id": question_id,
                    "question_type": category,
                    "answer_type": "other",
                    "confidence": 3,
                    "answers": [
                        {
                            "answer": a,
                            "raw_answer": a,
                            "answer_confidence": "yes",
                            "answer_id": i + 1,
                        }
                        for i, a in enumerate(answers)
                    ],
                }
            )
            split_rows.append((question_id, image_id, question, answers, category))
        for image_id in image_ids:
            path = root / "coco" / COCO[split] / f"COCO_{COCO[split]}_{image_id:012d}.jpg"
            path.write_bytes(jpegs[image_id % len(jpegs)])
        (okvqa_dir / f"OpenEnded_mscoco_{COCO[split]}_questions.json").write_text(json.dumps({"questions": questions}))
        (okvqa_dir / f"mscoco_{COCO[split]}_annotations.json").write_text(json.dumps({"annotations": annotations}))
        rows[split] = (split_rows, jpegs)
    return rows


def write_exports(root: Path, rows: dict) -> dict[str, Path]:
    """One parquet file per split in the HuggingFaceM4 layout, JPEG bytes embedded."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    paths = {}
    for split, (split_rows, jpegs) in rows.items():
        table = pa.table(
            {
                "image": [{"bytes": jpegs[i % len(jpegs)], "path": None} for _, i, _, _, _ in split_rows],
                "question": [q for _, _, q, _, _ in split_rows],
                "question_id": [qid for qid, _, _, _, _ in split_rows],
                "image_id": [i for _, i, _, _, _ in split_rows],
                "answers": [[{"answer": a, "raw_answer": a} for a in answers] for _, _, _, answers, _ in split_rows],
                "question_type": [c for _, _, _, _, c in split_rows],
            }
        )
        paths[split] = root / f"okvqa-{split}.parquet"
        pq.write_table(table, paths[split], row_group_size=1000)
    return paths


def timed(config: ConvertConfig) -> float:
    """Seconds one conversion takes."""
    start = time.perf_counter()
    convert(config)
    return time.perf_counter() - start


def main() -> None:
    from llava.entry import ExamplesHelpFormatter
    from llava.flags import Parser

    parser = Parser(description=__doc__, formatter_class=ExamplesHelpFormatter)
    parser.add_argument("--image-size", type=int, nargs=2, default=(64, 48), metavar=("W", "H"))
    parser.add_argument("--repeats", type=int, default=3, help="runs of the no-check conversion")
    parser.add_argument("--workers", type=int, default=None, help="image check threads (default: converter's)")
    parser.add_argument("--export", action="store_true", help="also time a parquet export with embedded images")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        start = time.perf_counter()
        rows = build(root, tuple(args.image_size))
        print(
            f"fixture: 14,055 questions, 14,031 images {args.image_size[0]}x{args.image_size[1]} "
            f"built in {time.perf_counter() - start:.1f} s; {os.cpu_count()} CPUs"
        )
        base = dict(okvqa_dir=root / "okvqa", coco_dir=root / "coco", out_dir=root / "out", progress=False)

        no_check = [timed(ConvertConfig(**base, check_images=False)) for _ in range(args.repeats)]
        print(
            f"conversion without image check: best {min(no_check):.2f} s, "
            f"median {statistics.median(no_check):.2f} s over {args.repeats} runs"
        )

        images = sum(count for _, count in SIZES.values())
        with_check = timed(ConvertConfig(**base, check_images=True, workers=args.workers))
        check_only = max(with_check - min(no_check), 1e-9)
        print(
            f"conversion with image check: {with_check:.2f} s; "
            f"image check {images / check_only:,.0f} images/s ({images} images)"
        )

        if args.export:
            paths = write_exports(root, rows)
            config = ConvertConfig(
                hf_train=[paths["train"]],
                hf_val=[paths["val"]],
                out_dir=root / "out-hf",
                progress=False,
                workers=args.workers,
            )
            first = timed(config)
            again = timed(config)
            print(
                f"parquet export, extract + check {images} images: {first:.2f} s "
                f"({images / first:,.0f} images/s); re-run {again:.2f} s"
            )


if __name__ == "__main__":
    main()
