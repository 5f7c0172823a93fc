"""Synthetic VQA data whose answers can be learned from the pictures.

Each image is a coloured shape on white; the question asks for its colour or
its shape, so a model that looks at the picture can get it right and one that
does not stays at chance (1 in 4). Used by tests, benchmarks and the CPU demo;
nothing is downloaded.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

COLOURS = {"red": (220, 30, 30), "green": (30, 170, 30), "blue": (30, 30, 220), "yellow": (230, 210, 20)}
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
        entries.append({
            "id": f"q{index}",
            "image": f"{index:04d}.png",
            "conversations": [
                {"from": "human", "value": f"<image>\n{QUESTIONS[kind]}\n{SUFFIX}"},
                {"from": "gpt", "value": answer},
            ],
            "answers": [answer] * 10,
        })
    for index in range(text_only):
        entries.append({
            "id": f"t{index}",
            "conversations": [{"from": "human", "value": "What is one plus one?"}, {"from": "gpt", "value": "two"}],
        })
    (folder / "train.json").write_text(json.dumps(entries, indent=1))
    return folder
