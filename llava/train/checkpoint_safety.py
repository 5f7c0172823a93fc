"""Resume loads nothing it cannot vouch for: a checkpoint is checked before the Trainer or DeepSpeed reads it.

A run folder written by someone else is data, not code. DeepSpeed unpickles its own files
without torch's weights-only guard, which runs whatever a pickle names, so before resuming:

- every pickle in the checkpoint (found by content: torch's zip format or a raw pickle,
  whatever its name) has the globals it names listed without executing anything
  (``torch.serialization.get_unsafe_globals_in_checkpoint``); a name outside the short list a
  genuine checkpoint needs stops the run, naming the file and the class, before any other
  file is read;
- then each file the resume reads is loaded with ``torch.load(weights_only=True)``, with
  only those classes registered, so a truncated or garbled file is named too.
  ``training_args.bin`` is listed but not loaded: nothing reads it on resume, and building
  its objects would write into the process's live ``accelerate`` state;
- ``trainer_state.json`` and the configs must be JSON objects.

``--trust_checkpoint_pickles True`` skips the pickle checks (the JSON checks stay).
"""

from __future__ import annotations

import importlib
import json
import logging
import re
from pathlib import Path

logger = logging.getLogger("llava")

# Classes a genuine checkpoint's files need, by file kind (transformers' rng_state, DeepSpeed's
# ZeRO optimizer states). Registered with torch only while checking and never process-wide.
LOADED_GLOBALS = (
    "numpy.ndarray",
    "numpy.dtype",
    "numpy._core.multiarray._reconstruct",
    "numpy.core.multiarray._reconstruct",
    "numpy.dtypes.UInt32DType",
    "deepspeed.runtime.zero.config.ZeroStageEnum",
    "deepspeed.runtime.fp16.loss_scaler.LossScaler",
    "deepspeed.runtime.fp16.loss_scaler.DynamicLossScaler",
    "deepspeed.utils.tensor_fragment.fragment_address",
)
# training_args.bin holds the TrainingArguments object: classes of these modules, listed only.
ARGUMENT_MODULES = ("llava.train.", "transformers.", "accelerate.")
LISTED_ONLY = frozenset({"training_args.bin"})
JSON_FILES = ("trainer_state.json", "config.json", "adapter_config.json")


class CheckpointRefused(ValueError):
    """A checkpoint file that resume will not read; the message names it and says what to do."""


def _is_pickle(path: Path) -> bool:
    try:
        with open(path, "rb") as stream:
            head = stream.read(4)
    except OSError:
        return False
    return head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"


def _resolve(name: str):
    module, _, attribute = name.rpartition(".")
    try:
        return getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError):
        return None


def _checkpoint_number(path: Path) -> int:
    suffix = path.name.split("-", 1)[-1]
    return int(suffix) if suffix.isdigit() else 0


def check_json_files(checkpoint: str | Path) -> None:
    """``trainer_state.json`` and the configs parse as JSON objects (CheckpointRefused naming the file)."""
    folder = Path(checkpoint)
    for name in JSON_FILES:
        path = folder / name
        if not path.exists():
            continue
        try:
            value = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as error:
            reason = getattr(error, "msg", None) or type(error).__name__
            raise CheckpointRefused(f"{path}: not valid JSON ({reason}). {advice(folder)}") from error
        if not isinstance(value, dict):
            raise CheckpointRefused(f"{path}: expected a JSON object, found {type(value).__name__}. {advice(folder)}")


def advice(checkpoint: Path) -> str:
    """What to do about a refused checkpoint: resume from the newest older one, by its path."""
    number = _checkpoint_number(checkpoint)
    older = sorted(
        (p for p in checkpoint.parent.glob("checkpoint-*") if p.is_dir() and 0 < _checkpoint_number(p) < number),
        key=_checkpoint_number,
    )
    target = str(older[-1]) if older else "PATH"
    return f"Delete or move {checkpoint}, or resume from an earlier one: --resume_from_checkpoint {target}"


_STRING_OPS = frozenset({"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "SHORT_BINSTRING", "BINSTRING"})


def _raw_pickle_globals(path: Path) -> list[str]:
    """The globals a bare (non-zip) pickle file names, read opcode by opcode (nothing is executed).

    Covers ``GLOBAL`` and protocol 4's ``STACK_GLOBAL`` (module and name pushed as strings,
    possibly through the memo); every pickle in the file, as torch's legacy format holds several.
    """
    import pickletools

    names: list[str] = []
    with open(path, "rb") as stream:
        size = path.stat().st_size
        while stream.tell() < size:
            pushed: list[object] = []
            memo: dict[int, object] = {}
            try:
                for opcode, argument, _ in pickletools.genops(stream):
                    if opcode.name == "GLOBAL":
                        names.append(str(argument).replace(" ", "."))
                    elif opcode.name in _STRING_OPS:
                        pushed.append(argument)
                    elif opcode.name == "MEMOIZE":
                        memo[len(memo)] = pushed[-1] if pushed else None
                    elif opcode.name in ("BINPUT", "LONG_BINPUT", "PUT"):
                        memo[int(argument)] = pushed[-1] if pushed else None
                    elif opcode.name in ("BINGET", "LONG_BINGET", "GET"):
                        pushed.append(memo.get(int(argument)))
                    elif opcode.name == "STACK_GLOBAL" and len(pushed) >= 2:
                        names.append(f"{pushed[-2]}.{pushed[-1]}")
                    elif opcode.name not in ("FRAME", "PROTO"):
                        pushed.append(None)
            except (ValueError, EOFError):
                break
    return names


def _globals_in(path: Path) -> list[str] | None:
    """The globals the pickle at ``path`` names, statically; None when it cannot be listed."""
    import torch

    try:
        with open(path, "rb") as stream:
            is_zip = stream.read(4) == b"PK\x03\x04"
        if is_zip:
            return list(torch.serialization.get_unsafe_globals_in_checkpoint(path))
        return _raw_pickle_globals(path)
    except Exception:  # a damaged file: the weights_only load decides
        return None


def _first_reason(error: Exception) -> str:
    """The informative line of a torch.load error (its own text is mostly boilerplate)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    for index, line in enumerate(lines):
        if line.startswith("WeightsUnpickler error") and index + 1 < len(lines):
            return lines[index + 1]
    return (lines[0] if lines else type(error).__name__)[:160]


def pickle_files(checkpoint: str | Path) -> list[Path]:
    """Every file under ``checkpoint`` that torch.load would unpickle, in a stable order."""
    return sorted(path for path in Path(checkpoint).rglob("*") if path.is_file() and _is_pickle(path))


def check_pickles(checkpoint: str | Path) -> None:
    """Refuse (CheckpointRefused) the first pickle that names a class outside the list, before loading any."""
    import torch

    folder = Path(checkpoint)
    files = pickle_files(folder)
    allowed = frozenset(LOADED_GLOBALS)
    for path in files:  # list every file's globals before any file is loaded
        for name in _globals_in(path) or []:
            ok = name in allowed or (path.name in LISTED_ONLY and name.startswith(ARGUMENT_MODULES))
            if not ok:
                raise CheckpointRefused(
                    f"{path}: refused: it would load {name}, which a checkpoint never needs (a pickle can run code). "
                    f"{advice(folder)}, or pass --trust_checkpoint_pickles True if you wrote it yourself."
                )
    registered = [value for value in map(_resolve, LOADED_GLOBALS) if value is not None]
    for path in files:
        if path.name in LISTED_ONLY:
            continue
        try:
            with torch.serialization.safe_globals(registered):
                torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:
            found = re.search(r"GLOBAL ([\w.]+)", str(error))
            what = f"it would load {found.group(1)}" if found else f"unreadable ({_first_reason(error)})"
            raise CheckpointRefused(
                f"{path}: refused: {what}. {advice(folder)}, or pass --trust_checkpoint_pickles True "
                "if you wrote it yourself."
            ) from None


def check_checkpoint(checkpoint: str | Path, trust_pickles: bool = False) -> None:
    """Everything resume reads from ``checkpoint`` is checked (see the module docstring)."""
    check_json_files(checkpoint)
    if trust_pickles:
        logger.warning("Not checking the pickles in %s (--trust_checkpoint_pickles True).", checkpoint)
        return
    check_pickles(checkpoint)
