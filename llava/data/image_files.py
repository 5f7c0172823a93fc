"""The converters' image work: checking image files (in parallel) and extracting embedded images.

Every picture is opened through ``llava.images``; a problem becomes an
``Issue`` of kind ``bad_image`` (docs/CUSTOM_DATA.md).
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import io
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from llava.data.conversion import EmbeddedSource, Issue, Sample, flag_sample
from llava.data.tables import image_batches
from llava.images import ImageReadError, image_format, open_image
from llava.utils import write_atomic

_JPEG_MAGIC = b"\xff\xd8\xff"


def check_image_file(path: Path) -> str | None:
    """None when the image file decodes, else why not ('missing', 'unreadable: ...')."""
    try:
        image_format(path)
    except ImageReadError as error:
        return "missing" if error.missing else f"unreadable: {error.reason}"
    return None


def progress_bar(total: int, progress: bool | None, description: str):
    """A tqdm bar; None shows it on a terminal only."""
    from tqdm import tqdm

    return tqdm(
        total=total,
        desc=description,
        unit="img",
        disable=None if progress is None else not progress,
    )


def default_workers() -> int:
    """Image checks are I/O plus C decoding that releases the GIL: 4 threads per CPU, at most 32."""
    return min(32, 4 * (os.cpu_count() or 1))


def check_image_files(
    samples: Sequence[Sample],
    decode: bool,
    workers: int | None,
    progress: bool | None,
    issues: list[Issue],
) -> None:
    """Find every image file the samples use (one listing per folder), decode each once in threads."""
    users: dict[Path, list[Sample]] = {}
    for sample in samples:
        if sample.image_file is not None:
            users.setdefault(sample.image_file, []).append(sample)
    listings = {
        folder: set(os.listdir(folder)) if folder.is_dir() else set() for folder in {path.parent for path in users}
    }
    problems: dict[Path, str] = {}
    present = []
    for path in users:
        if path.name in listings[path.parent]:
            present.append(path)
        else:
            problems[path] = "missing"
    if decode and present:
        with (
            concurrent.futures.ThreadPoolExecutor(max_workers=workers or default_workers()) as pool,
            progress_bar(len(present), progress, "checking images") as bar,
        ):
            for path, problem in zip(present, pool.map(check_image_file, present), strict=True):
                bar.update(1)
                if problem:
                    problems[path] = problem
    for path in sorted(problems):
        for sample in users[path]:
            reason = f"{sample.image} {problems[path]}"
            flag_sample(issues, sample, "bad_image", reason)


def _embedded_value(array: Any, index: int, base: Path) -> bytes | None:
    """The image bytes of one row: the struct's bytes, else the file its path names."""
    value = array[index].as_py()
    path = None
    if isinstance(value, dict):
        data, path = value.get("bytes"), value.get("path")
    elif isinstance(value, (bytes, bytearray)):
        data = bytes(value)
    else:
        data, path = None, value
    if data:
        return data
    if isinstance(path, str) and path:
        for candidate in (Path(path), base / path):
            if candidate.is_file():
                return candidate.read_bytes()
    return None


_EXTENSIONS = {
    "JPEG": ".jpg",
    "PNG": ".png",
    "GIF": ".gif",
    "WEBP": ".webp",
    "BMP": ".bmp",
    "TIFF": ".tif",
}


def _prepare_embedded(data: bytes | None, decode: bool, to_jpeg: bool) -> tuple[str | None, bytes | None, str, bool]:
    """(problem, bytes to write, file extension, re-encoded?) for an embedded image.

    JPEG bytes are kept as they are; other formats are kept too (their own
    extension), or re-encoded as JPEG at quality 95 with ``to_jpeg``.
    """
    if not data:
        return "missing", None, "", False
    if data.startswith(_JPEG_MAGIC) and not decode:
        return None, data, ".jpg", False
    try:
        found = image_format(data, decode=decode or to_jpeg)
        if found == "JPEG" or not to_jpeg:
            return None, data, _EXTENSIONS.get(found, ".img"), False
        buffer = io.BytesIO()
        open_image(data).save(buffer, format="JPEG", quality=95)
        return None, buffer.getvalue(), ".jpg", True
    except ImageReadError as error:
        return f"unreadable: {error.reason}", None, "", False


def _write_image(path: Path, data: bytes) -> None:
    """Write an image unless the same bytes are already there (reruns stay cheap)."""
    if path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, data)


@contextmanager
def new_files_removed_on_error(folder: Path) -> Iterator[None]:
    """On an error in the block, remove the files it created under ``folder`` (and folders left empty).

    A failed conversion leaves nothing behind: embedded pictures are extracted before the
    last checks, so a conversion that fails after them would otherwise leave them in ``images/``.
    Files that were there before the block stay.
    """
    before = {path for path in folder.rglob("*") if path.is_file()} if folder.is_dir() else set()
    existed = folder.is_dir()
    try:
        yield
    except BaseException:
        if folder.is_dir():
            for path in folder.rglob("*"):
                if path.is_file() and path not in before:
                    path.unlink(missing_ok=True)
            for path in sorted((p for p in folder.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
                if not any(path.iterdir()):
                    path.rmdir()
            if not existed and not any(folder.iterdir()):
                folder.rmdir()
        raise


def extract_embedded(
    samples: Sequence[Sample],
    sources: Sequence[EmbeddedSource],
    images_dir: Path,
    *,
    decode: bool,
    write: bool,
    to_jpeg: bool,
    workers: int | None,
    progress: bool | None,
    issues: list[Issue],
) -> int:
    """Stream embedded images, check those the samples use, write each once under images_dir.

    Samples sharing an image_key read the image of the first of them; a sample
    without a key reads its own row, is named by the content hash
    (``images/<sha256[:16]>.<ext>``) and keyed by that name. Returns how many
    images were re-encoded to JPEG.
    """
    groups: dict[Any, list[Sample]] = {}
    for sample in samples:
        if sample.embedded is not None:
            key = sample.image_key if sample.image_key is not None else ("row", sample.embedded)
            groups.setdefault(key, []).append(sample)
    wanted: dict[int, dict[int, Any]] = {}
    for key, users in groups.items():
        source_index, row = users[0].embedded  # type: ignore[misc]
        wanted.setdefault(source_index, {})[row] = key
    reencoded = 0
    with (
        concurrent.futures.ThreadPoolExecutor(max_workers=workers or default_workers()) as pool,
        progress_bar(len(groups), progress, "checking images" if decode else "extracting images") as bar,
    ):
        for source_index, rows in sorted(wanted.items()):
            source = sources[source_index]
            offset = 0
            for array in image_batches(source):
                batch_rows = [row for row in range(offset, offset + len(array)) if row in rows]
                datas = [_embedded_value(array, row - offset, source.base) for row in batch_rows]
                offset += len(array)
                results = pool.map(lambda data: _prepare_embedded(data, decode, to_jpeg), datas)
                for row, (problem, data, extension, was_reencoded) in zip(batch_rows, results, strict=True):
                    bar.update(1)
                    users = groups[rows[row]]
                    if problem or data is None:
                        for sample in users:
                            flag_sample(issues, sample, "bad_image", f"image {problem}")
                        continue
                    reencoded += was_reencoded
                    if not users[0].image:
                        name = hashlib.sha256(data).hexdigest()[:16] + extension
                        for sample in users:
                            sample.image, sample.image_key = name, name
                    if write:
                        _write_image(images_dir / users[0].image, data)
    return reencoded
