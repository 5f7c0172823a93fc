"""Small shared helpers: atomic file and folder writes (with the user's umask), and ``disable_torch_init``.

Every output of this project (data files, predictions, checkpoint files) is
written under a temporary name in the target's folder and renamed into place, so
a crash leaves the old file or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def plural(count: int, word: str, many: str | None = None) -> str:
    """``"1 problem"``, ``"3 problems"``: a count with its noun in the right number.

    >>> plural(1, "question"), plural(2, "question"), plural(0, "entry", "entries")
    ('1 question', '2 questions', '0 entries')
    """
    return f"{count} {word if count == 1 else (many or word + 's')}"


def current_umask() -> int:
    """This process's umask (read from /proc on Linux: no change, so safe with threads)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside ``path`` that replaces ``path`` when the block succeeds.

    On any error the temporary file is removed and ``path`` is left untouched.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(handle)
    try:
        yield Path(temporary)
        # Deviation from upstream: upstream writes in place, so its files follow the umask. mkstemp
        # creates 0600; give the file the mode a plain open() would (team-readable under the usual
        # umask 022 / 002), unless the block set one itself.
        if os.stat(temporary).st_mode & 0o777 == 0o600:
            os.chmod(temporary, 0o666 & ~current_umask())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_atomic(path: str | os.PathLike, data: bytes | str) -> None:
    """Write ``data`` (text as UTF-8) to ``path`` atomically."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    with atomic_path(path) as temporary:
        temporary.write_bytes(payload)


@contextmanager
def atomic_output_dir(out: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield an empty staging folder next to ``out``; rename it to ``out`` when the block succeeds.

    On an error the staging folder is removed and ``out`` is untouched. An
    existing ``out`` is an error unless ``overwrite``; then it is replaced only
    once the new folder is complete. The folder counterpart of :func:`atomic_path`: a model
    folder is many files that must appear together, so it is staged whole and renamed (a
    replaced ``out`` is renamed aside first, as a folder cannot be swapped in one rename).
    """
    out = Path(out).resolve()
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} already exists: choose another output folder or pass --overwrite")
    out.parent.mkdir(parents=True, exist_ok=True)
    tag = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    staging = out.parent / f".{out.name}.partial-{tag}"
    staging.mkdir()
    try:
        yield staging
        follow_umask(staging)
        if out.exists():
            retired = out.parent / f".{out.name}.old-{tag}"
            os.replace(out, retired)
            os.replace(staging, out)
            shutil.rmtree(retired)
        else:
            os.replace(staging, out)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def follow_umask(folder: str | os.PathLike) -> None:
    """Give every file under ``folder`` the mode a plain ``open()`` would (``0666 & ~umask``; scripts keep
    their execute bits): safetensors and mkstemp write 0600, so a server user could not read them."""
    mask = current_umask()
    for path in Path(folder).rglob("*"):
        if path.is_file() and not path.is_symlink():
            executable = path.stat().st_mode & 0o100
            path.chmod((0o777 if executable else 0o666) & ~mask)


class JsonFileError(ValueError):
    """A JSON file that cannot be read; the message names the file and says what is wrong, in one line."""


def load_json_file(path: str | os.PathLike) -> Any:
    """The value in the JSON file at ``path``; :class:`JsonFileError` for bad bytes, bad JSON or deep nesting."""
    try:
        text = Path(path).read_bytes().decode("utf-8")
        return json.loads(text)
    except UnicodeDecodeError as error:
        raise JsonFileError(f"{path}: not UTF-8 text (byte {error.start})") from None
    except json.JSONDecodeError as error:
        raise JsonFileError(f"{path}: not valid JSON ({error.msg}; line {error.lineno})") from None
    except RecursionError:
        raise JsonFileError(f"{path}: not valid JSON (nested too deeply)") from None


def jsonl_records(path: str | os.PathLike, problems: list[str]) -> Iterator[tuple[int, Any]]:
    """``(line number, value)`` for each non-blank line of a JSON Lines file.

    A line that is not UTF-8 JSON adds ``"PATH:LINE: not valid JSON (why)"`` (or ``not UTF-8
    text``) to ``problems`` and is skipped, so a reader can report every bad line at once.
    """
    with open(path, "rb") as handle:
        for line_number, raw in enumerate(handle, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                problems.append(f"{path}:{line_number}: not UTF-8 text (byte {error.start} of the line)")
                continue
            if not line.strip():
                continue
            try:
                yield line_number, json.loads(line)
            except json.JSONDecodeError as error:
                problems.append(f"{path}:{line_number}: not valid JSON ({error.msg})")
            except RecursionError:
                problems.append(f"{path}:{line_number}: not valid JSON (nested too deeply)")


def disable_torch_init() -> None:
    """Upstream's front, kept so its scripts run; does nothing here.

    Deviation from upstream: upstream replaced ``reset_parameters`` of
    ``torch.nn.Linear`` and ``LayerNorm`` for the whole process to speed up
    model creation; transformers 5 already skips initialising weights that
    ``from_pretrained`` loads, so no global is patched.
    """


def finite_or_none(value):
    """``value`` with every NaN / infinity (in nested dicts and lists) replaced by None.

    ``json.dumps`` writes those as bare ``NaN`` / ``Infinity``, which is not JSON.
    """
    import math

    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite_or_none(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(item) for item in value]
    return value
