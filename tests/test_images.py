"""The one image opener: decoded pictures, and one error type naming the file for every failure."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from llava.images import ImageReadError, image_format, open_image, verify_image


def _jpeg_bytes(size=(40, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 10, 10)).save(buffer, format="JPEG")
    return buffer.getvalue()


def test_opens_a_path_and_bytes_in_rgb(tmp_path):
    path = tmp_path / "red.png"
    Image.new("L", (8, 6), 128).save(path)
    picture = open_image(path)
    assert picture.mode == "RGB" and picture.size == (8, 6)
    assert open_image(path, mode=None).mode == "L"
    assert open_image(_jpeg_bytes()).size == (40, 30)
    assert verify_image(_jpeg_bytes((5, 7))) == (5, 7)


def test_missing_file_is_named_and_flagged(tmp_path):
    with pytest.raises(ImageReadError, match="no such file") as caught:
        open_image(tmp_path / "gone.jpg")
    assert caught.value.missing and str(tmp_path / "gone.jpg") in str(caught.value)


def test_truncated_jpeg_fails_on_open_not_later(tmp_path):
    data = _jpeg_bytes((64, 64))
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError) as caught:
        verify_image(path)
    assert not caught.value.missing and "cut.jpg" in str(caught.value)


def test_bytes_that_are_not_a_picture_use_the_label():
    with pytest.raises(ImageReadError, match="row 3 of data.parquet"):
        open_image(b"not a picture", label="row 3 of data.parquet")


def test_image_format_decodes_every_byte_or_reads_the_header_only(tmp_path):
    data = _jpeg_bytes((64, 64))
    assert image_format(data) == "JPEG"
    cut = data[:-40]  # the end of the scan data is gone
    assert image_format(cut, decode=False) == "JPEG", "the header alone is intact"
    with pytest.raises(ImageReadError, match="row 1"):
        image_format(cut, label="row 1")


def test_draft_decodes_a_jpeg_at_a_reduced_scale_no_smaller_than_asked():
    picture = open_image(_jpeg_bytes((400, 320)), draft=(100, 80))
    assert picture.size == (100, 80)
    assert open_image(_jpeg_bytes((400, 320))).size == (400, 320)
