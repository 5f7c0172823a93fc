"""Synthetic VQA data whose answers can be learned from the pictures.

Each image is a coloured shape on white; the question asks for its colour or
its shape, so a model that looks at the picture can get it right and one that
does not stays at chance (1 in 4). Used by tests, benchmarks and the CPU demo;
nothing is downloaded. Two layouts:

- ``write_llava_vqa``: LLaVA training format directly (tests, benchmarks);
- ``write_okvqa_layout`` / ``python -m llava.data.synthetic --out DIR``: the
  official OK-VQA files and COCO-style image folders, so the demo runs the
  real converter::

      DIR/okvqa/OpenEnded_mscoco_{train,val}2014_questions.json
      DIR/okvqa/mscoco_{train,val}2014_annotations.json
      DIR/coco/{train,val}2014/COCO_{split}2014_{image_id:012d}.jpg

- ``write_aokvqa_layout`` / ``--layout aokvqa``: the official A-OKVQA files
  (``DIR/aokvqa/aokvqa_v1p0_{train,val}.json``, four choices, ten direct
  answers, three rationales) and ``DIR/coco/{train,val}2017/{image_id:012d}.jpg``;
- ``write_csv_layout`` / ``--layout csv``: what a researcher's own data looks
  like, ``DIR/csv/vqa.csv`` (columns image, question, answer, category; two
  questions per image; some answers a JSON list of several) and
  ``DIR/csv/images/*.jpg``, for ``python -m llava.data.vqa`` (docs/CUSTOM_DATA.md).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

COLOURS = {
    "red": (220, 30, 30),
    "green": (30, 170, 30),
    "blue": (30, 30, 220),
    "yellow": (230, 210, 20),
}
SHAPES = ("circle", "square", "triangle", "cross")
SUFFIX = "Answer the question using a single word or phrase."
QUESTIONS = {"colour": "What colour is the shape?", "shape": "What shape is drawn?"}


def draw(colour: str, shape: str, size: tuple[int, int] = (40, 32), jitter: int = 0):
    """A PIL image of ``shape`` in ``colour`` on white, shifted right by ``jitter`` pixels."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", size, "white")
    pen = ImageDraw.Draw(image)
    fill = COLOURS[colour]
    left, top, right, bottom = 4 + jitter, 4, 24 + jitter, 26
    if shape == "circle":
        pen.ellipse([left, top, right, bottom], fill=fill)
    elif shape == "square":
        pen.rectangle([left, top, right, bottom], fill=fill)
    elif shape == "triangle":
        pen.polygon([(left, bottom), (right, bottom), ((left + right) // 2, top)], fill=fill)
    elif shape == "cross":
        middle_x, middle_y = (left + right) // 2, (top + bottom) // 2
        pen.rectangle([middle_x - 3, top, middle_x + 3, bottom], fill=fill)
        pen.rectangle([left, middle_y - 3, right, middle_y + 3], fill=fill)
    else:
        raise ValueError(f"unknown shape {shape!r}: {SHAPES}")
    return image


def write_llava_vqa(folder, count: int = 24, text_only: int = 2, seed: int = 0, kinds=("colour",)) -> Path:
    """Write ``folder/images/*.png`` and ``folder/train.json`` (LLaVA format).

    ``count`` image questions (each also carries ``answers``, ten copies of the
    right one) and ``text_only`` entries without an image.
    """
    folder = Path(folder)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    colours = sorted(COLOURS)
    entries = []
    for index in range(count):
        colour, shape = colours[index % len(colours)], rng.choice(SHAPES)
        kind = kinds[index % len(kinds)]
        answer = colour if kind == "colour" else shape
        draw(colour, shape, jitter=index % 7).save(folder / "images" / f"{index:04d}.png")
        entries.append(
            {
                "id": f"q{index}",
                "image": f"{index:04d}.png",
                "conversations": [
                    {"from": "human", "value": f"<image>\n{QUESTIONS[kind]}\n{SUFFIX}"},
                    {"from": "gpt", "value": answer},
                ],
                "answers": [answer] * 10,
            }
        )
    for index in range(text_only):
        entries.append(
            {
                "id": f"t{index}",
                "conversations": [
                    {"from": "human", "value": "What is one plus one?"},
                    {"from": "gpt", "value": "two"},
                ],
            }
        )
    (folder / "train.json").write_text(json.dumps(entries, indent=1))
    return folder


# Knowledge categories are borrowed from OK-VQA so per-category scores have something to show.
_CATEGORY = {"colour": "three", "shape": "nine"}
# A few annotators answer with a near-synonym, as in the real data.
_VARIANTS = {
    "red": "dark red",
    "green": "lime",
    "blue": "navy",
    "yellow": "gold",
    "circle": "round",
    "square": "box",
    "triangle": "pyramid",
    "cross": "plus",
}


def _draw_sample(rng: random.Random, colours: list[str], index: int, path: Path) -> tuple[str, str, str, str]:
    """Draw one random picture to ``path``: ``(kind, answer, colour, shape)``, kind colour on even ``index``."""
    colour, shape = rng.choice(colours), rng.choice(SHAPES)
    kind = "colour" if index % 2 == 0 else "shape"
    picture = draw(colour, shape, size=(64, 48), jitter=rng.randrange(0, 30))
    picture.save(path, quality=95)
    return kind, colour if kind == "colour" else shape, colour, shape


def _split_records(split: str, count: int, first_image_id: int, rng: random.Random, image_dir: Path):
    questions, annotations = [], []
    colours = sorted(COLOURS)
    for index in range(count):
        image_id = first_image_id + index
        kind, answer, _, _ = _draw_sample(rng, colours, index, image_dir / f"COCO_{split}2014_{image_id:012d}.jpg")
        question_id = image_id * 10 + 1
        questions.append({"image_id": image_id, "question": QUESTIONS[kind], "question_id": question_id})
        answers = [answer] * 8 + [_VARIANTS[answer]] * 2
        rng.shuffle(answers)
        annotations.append(
            {
                "image_id": image_id,
                "question_id": question_id,
                "question_type": _CATEGORY[kind],
                "answer_type": "other",
                "confidence": 3,
                "answers": [
                    {
                        "answer": text,
                        "raw_answer": text,
                        "answer_confidence": "yes",
                        "answer_id": number + 1,
                    }
                    for number, text in enumerate(answers)
                ],
            }
        )
    return questions, annotations


def write_okvqa_layout(out_dir, train_size: int = 320, val_size: int = 96, seed: int = 0) -> Path:
    """Write a synthetic OK-VQA in the official file layout (see the module docstring)."""
    out = Path(out_dir)
    okvqa = out / "okvqa"
    okvqa.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    for split, count, first_id in (("train", train_size, 1), ("val", val_size, 500_001)):
        image_dir = out / "coco" / f"{split}2014"
        image_dir.mkdir(parents=True, exist_ok=True)
        questions, annotations = _split_records(split, count, first_id, rng, image_dir)
        header = {
            "info": {"description": "synthetic OK-VQA (llava-okvqa demo)"},
            "license": {},
            "data_subtype": f"{split}2014",
        }
        (okvqa / f"OpenEnded_mscoco_{split}2014_questions.json").write_text(
            json.dumps({**header, "questions": questions})
        )
        (okvqa / f"mscoco_{split}2014_annotations.json").write_text(json.dumps({**header, "annotations": annotations}))
    return out


def _choice_entry(rng: random.Random, kind: str, answer: str) -> tuple[list[str], int]:
    """Four choices of the answer's kind (the answer among them) and the index of the answer."""
    pool = sorted(COLOURS) if kind == "colour" else list(SHAPES)
    choices = [answer] + rng.sample([item for item in pool if item != answer], 3)
    rng.shuffle(choices)
    return choices, choices.index(answer)


def write_aokvqa_layout(out_dir, train_size: int = 320, val_size: int = 96, seed: int = 0) -> Path:
    """Write a synthetic A-OKVQA in the official file layout (see the module docstring)."""
    out = Path(out_dir)
    (out / "aokvqa").mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    colours = sorted(COLOURS)
    for split, count, first_id in (("train", train_size, 1), ("val", val_size, 500_001)):
        image_dir = out / "coco" / f"{split}2017"
        image_dir.mkdir(parents=True, exist_ok=True)
        entries = []
        for index in range(count):
            image_id = first_id + index
            kind, answer, colour, shape = _draw_sample(rng, colours, index, image_dir / f"{image_id:012d}.jpg")
            direct = [answer] * 8 + [_VARIANTS[answer]] * 2
            rng.shuffle(direct)
            choices, correct = _choice_entry(rng, kind, answer)
            entries.append(
                {
                    "split": split,
                    "image_id": image_id,
                    "question_id": f"syn{image_id:08d}",
                    "question": QUESTIONS[kind],
                    "choices": choices,
                    "correct_choice_idx": correct,
                    "direct_answers": direct,
                    "difficult_direct_answer": False,
                    "rationales": [f"The drawn {shape} is {colour}."] * 3,
                }
            )
        (out / "aokvqa" / f"aokvqa_v1p0_{split}.json").write_text(json.dumps(entries))
    return out


def write_csv_layout(out_dir, images: int = 208, seed: int = 0) -> Path:
    """Write a synthetic spreadsheet of VQA data, two questions per image (module docstring)."""
    import csv

    folder = Path(out_dir) / "csv"
    (folder / "images").mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    colours = sorted(COLOURS)
    rows = []
    for index in range(images):
        colour, shape = rng.choice(colours), rng.choice(SHAPES)
        name = f"images/{index:05d}.jpg"
        draw(colour, shape, size=(64, 48), jitter=rng.randrange(0, 30)).save(folder / name, quality=95)
        for kind, answer in (("colour", colour), ("shape", shape)):
            # Every fifth row lists what several annotators said, as a JSON list in the cell.
            cell = json.dumps([answer, answer, _VARIANTS[answer]]) if index % 5 == 0 else answer
            rows.append((name, QUESTIONS[kind], cell, kind))
    with open(folder / "vqa.csv", "w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(["image", "question", "answer", "category"])
        writer.writerows(rows)
    return folder


def main(argv: list[str] | None = None) -> Path:
    from llava.entry import HelpFormatter
    from llava.flags import Parser

    parser = Parser(
        formatter_class=HelpFormatter,
        prog="python -m llava.data.synthetic",
        description="Write synthetic VQA data (OK-VQA or A-OKVQA official layout, or a CSV of image "
        "paths) whose answers are learnable from the pictures: the colour or shape of a drawn object.",
    )
    parser.add_argument("--out", required=True, help="output folder (okvqa/ and coco/ are created in it)")
    parser.add_argument(
        "--layout",
        choices=("okvqa", "aokvqa", "csv"),
        default="okvqa",
        help="okvqa (default): official OK-VQA files; aokvqa: official A-OKVQA files; "
        "csv: a spreadsheet with image paths (questions = 2 per image)",
    )
    parser.add_argument("--train-size", type=int, default=320, help="train questions (default: 320)")
    parser.add_argument("--val-size", type=int, default=96, help="val questions (default: 96)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.layout == "aokvqa":
        out = write_aokvqa_layout(args.out, args.train_size, args.val_size, args.seed)
        print(f"wrote synthetic A-OKVQA to {out}: --aokvqa-dir {out / 'aokvqa'} --coco-dir {out / 'coco'}")
    elif args.layout == "csv":
        out = write_csv_layout(args.out, (args.train_size + args.val_size) // 2, args.seed)
        print(f"wrote synthetic VQA spreadsheet: --input {out / 'vqa.csv'}")
    else:
        out = write_okvqa_layout(args.out, args.train_size, args.val_size, args.seed)
        print(f"wrote synthetic OK-VQA to {out}: --okvqa-dir {out / 'okvqa'} --coco-dir {out / 'coco'}")
    return out


if __name__ == "__main__":
    main()
