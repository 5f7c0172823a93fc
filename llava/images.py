"""Opening pictures: the one image opener, with one error type that names the file.

Training, pre-flight, evaluation, answering, serving and the converters all
open pictures here, so a missing, unreadable or truncated file gives the same
:class:`ImageReadError` everywhere, with the path (or the label of embedded
bytes) and the reason.
"""

from __future__ import annotations

import io
import os

__all__ = ["ImageReadError", "image_format", "open_image", "verify_image"]

# JPEGs decode at the smallest scale PIL offers (1/8) when only a check is wanted: every byte is still read.
SMALLEST_DRAFT = (1, 1)


class ImageReadError(ValueError):
    """A picture cannot be opened or fully decoded; the message names it and says why."""

    def __init__(self, where: str, reason: str, missing: bool = False):
        self.where = where
        self.reason = reason
        self.missing = missing
        super().__init__(f"cannot read image {where}: {reason}")


def _where(source, label: str | None) -> tuple[object, str]:
    if isinstance(source, bytes | bytearray):
        return io.BytesIO(source), label or "(embedded bytes)"
    return source, label or os.fspath(source)


def _read(source, label: str | None, mode: str | None, draft: tuple[int, int] | None, decode: bool, keep: bool):
    """(picture or None, format) of ``source``; every failure is an :class:`ImageReadError`."""
    from PIL import Image

    stream, where = _where(source, label)
    # PIL raises many types for a bad file (OSError, SyntaxError, struct.error, DecompressionBombError, ...).
    try:
        with Image.open(stream) as picture:
            image_format = str(picture.format or "")
            if not decode:
                return None, image_format
            if draft is not None and picture.format == "JPEG":
                picture.draft("RGB", draft)  # JPEG only: decode at a reduced scale, still reading every byte
            picture.load()  # decode every byte now: a truncated file fails here, not at its first batch
            if not keep:
                return None, image_format
            return (picture.convert(mode) if mode else picture.copy()), image_format
    except FileNotFoundError as error:
        raise ImageReadError(where, "no such file", missing=True) from error
    except Exception as error:
        raise ImageReadError(where, f"{type(error).__name__}: {error}") from error


def open_image(
    source: str | os.PathLike | bytes,
    mode: str | None = "RGB",
    label: str | None = None,
    draft: tuple[int, int] | None = None,
):
    """The fully decoded picture at a path (or in ``bytes``), converted to ``mode`` (None keeps it).

    ``label`` names embedded bytes in errors (for example ``"row 12 of data.parquet"``);
    ``draft`` lets a JPEG decode at a reduced scale no smaller than that size (thumbnails).

        >>> open_image("/no/such.jpg")
        Traceback (most recent call last):
        ...
        llava.images.ImageReadError: cannot read image /no/such.jpg: no such file
    """
    picture, _ = _read(source, label, mode, draft, decode=True, keep=True)
    return picture


def verify_image(source: str | os.PathLike | bytes, label: str | None = None) -> tuple[int, int]:
    """Decode a picture fully and return its ``(width, height)``; :class:`ImageReadError` if it cannot be."""
    picture = open_image(source, mode=None, label=label)
    return picture.size


def image_format(source: str | os.PathLike | bytes, label: str | None = None, decode: bool = True) -> str:
    """The picture's format name (``"JPEG"``, ``"PNG"``, ...) after decoding every byte (JPEGs at 1/8 scale).

    ``decode=False`` reads the header only. :class:`ImageReadError` if it cannot be read.
    """
    _, name = _read(source, label, None, SMALLEST_DRAFT, decode=decode, keep=False)
    return name
