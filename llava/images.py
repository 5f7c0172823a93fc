"""Opening pictures: the one image opener, with one error type that names the file.

Training, pre-flight, evaluation, answering, serving and the converters all
open pictures here, so a missing, unreadable or truncated file gives the same
:class:`ImageReadError` everywhere, with the path (or the label of embedded
bytes) and the reason.
"""

from __future__ import annotations

import io
import os

__all__ = ["ImageReadError", "open_image", "verify_image"]


class ImageReadError(ValueError):
    """A picture cannot be opened or fully decoded; the message names it and says why."""

    def __init__(self, where: str, reason: str, missing: bool = False):
        self.where = where
        self.reason = reason
        self.missing = missing
        super().__init__(f"cannot read image {where}: {reason}")


def _decoded(source, where: str, mode: str | None):
    from PIL import Image

    # PIL raises many types for a bad file (OSError, SyntaxError, struct.error, DecompressionBombError, ...).
    try:
        with Image.open(source) as picture:
            picture.load()  # decode every byte now: a truncated file fails here, not at its first batch
            return picture.convert(mode) if mode else picture.copy()
    except FileNotFoundError as error:
        raise ImageReadError(where, "no such file", missing=True) from error
    except Exception as error:
        raise ImageReadError(where, f"{type(error).__name__}: {error}") from error


def open_image(source: str | os.PathLike | bytes, mode: str | None = "RGB", label: str | None = None):
    """The fully decoded picture at a path (or in ``bytes``), converted to ``mode`` (None keeps it).

    ``label`` names embedded bytes in errors (for example ``"row 12 of data.parquet"``).

        >>> open_image("/no/such.jpg")
        Traceback (most recent call last):
        ...
        llava.images.ImageReadError: cannot read image /no/such.jpg: no such file
    """
    if isinstance(source, bytes | bytearray):
        return _decoded(io.BytesIO(source), label or "(embedded bytes)", mode)
    return _decoded(source, label or os.fspath(source), mode)


def verify_image(source: str | os.PathLike | bytes, label: str | None = None) -> tuple[int, int]:
    """Decode a picture fully and return its ``(width, height)``; :class:`ImageReadError` if it cannot be."""
    picture = open_image(source, mode=None, label=label)
    return picture.size
