"""Fixtures for the data tests: a tiny CLIP image processor, generated images, data arguments."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest


@pytest.fixture(scope="session")
def image_processor():
    """A CLIP image processor at 32 px (the PIL backend; no download, no torchvision)."""
    from transformers import CLIPImageProcessor

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})


@pytest.fixture()
def write_image():
    """``write_image(path, size=(40, 20), color=...)``: save a solid-colour RGB image (format by suffix)."""
    from PIL import Image

    def write(path: Path, size=(40, 20), color=(200, 30, 30)) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", size, color).save(path)
        return path

    return write


@pytest.fixture()
def write_json():
    """``write_json(path, data)``: write ``data`` as JSON and return the path."""

    def write(path: Path, data) -> Path:
        path = Path(path)
        path.write_text(json.dumps(data, indent=1), encoding="utf-8")
        return path

    return write


@pytest.fixture()
def make_data_args(image_processor, tmp_path):
    """``make_data_args(**overrides)``: data arguments as train() fills them (images under tmp_path/images)."""

    def make(**overrides):
        values = dict(
            data_path=None,
            lazy_preprocess=True,
            is_multimodal=True,
            image_folder=str(tmp_path / "images"),
            image_aspect_ratio="square",
            image_processor=image_processor,
            mm_use_im_start_end=False,
        )
        values.update(overrides)
        return SimpleNamespace(**values)

    return make
