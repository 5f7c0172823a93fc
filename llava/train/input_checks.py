"""Checks of the folders a training run names, before anything loads (part of ``validate``).

Each problem is a sentence that says what to fix:

- ``--output_dir`` must be a folder this user can write (or creatable in one);
  a file of that name, or a read-only folder, would otherwise fail at the
  first save, after all the training.
- ``--model_name_or_path`` / ``--vision_tower`` given as a local path must
  exist and hold ``config.json`` (otherwise transformers builds a default
  model, or complains about Hub repo ids).
- ``--max_nonfinite_steps`` is at least 1.

A name is a local path when it exists, or when it cannot be a Hub id
(``org/name``): it starts with ``/``, ``.`` or ``~``, or has more than one ``/``.

Deviation from upstream: upstream finds these at the first save or while loading.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def looks_local(name: str) -> bool:
    """True when ``name`` is meant as a folder on disk rather than a Hugging Face Hub id."""
    if os.path.exists(name):
        return True
    return name.startswith(("/", ".", "~")) or name.count("/") > 1 or "\\" in name


def _check_model_folder(flag: str, name: str | None, what: str) -> list[str]:
    if name is None or not looks_local(name):
        return []
    folder = Path(name).expanduser()
    if not folder.exists():
        return [
            f"{flag} {name}: no such folder (looked for {folder.resolve()}); give the local {what} "
            "folder, or a Hugging Face Hub id such as org/name"
        ]
    if not folder.is_dir():
        return [f"{flag} {name} is a file; give the {what} folder (the one holding config.json)"]
    if not (folder / "config.json").is_file():
        return [
            f"{flag} {name} has no config.json: it is not a saved {what}; point {flag} at the folder "
            "save_pretrained wrote (config.json next to the weights)"
        ]
    return []


def _check_output_dir(output_dir: str | None) -> list[str]:
    if not output_dir:
        return ["--output_dir is missing: give the folder for checkpoints and the trained model"]
    folder = Path(output_dir).expanduser()
    if folder.exists() and not folder.is_dir():
        return [f"--output_dir {output_dir} is a file, not a folder: remove it or choose another --output_dir"]
    existing = folder
    while not existing.exists():  # the nearest folder that exists is where makedirs starts
        existing = existing.parent
    if not existing.is_dir():
        return [
            f"--output_dir {output_dir}: {existing} is a file, so the folder cannot be created; "
            "choose another --output_dir"
        ]
    if not os.access(existing, os.W_OK | os.X_OK):
        return [
            f"--output_dir {output_dir}: {existing} is not writable by this user, so no checkpoint could "
            "be saved; choose a writable --output_dir or fix the folder's permissions"
        ]
    return []


def check_run_inputs(model_args: Any, data_args: Any, training_args: Any) -> list[str]:
    """Every problem with the run's folders (empty when fine); nothing is created or loaded."""
    problems = _check_output_dir(training_args.output_dir)
    problems += _check_model_folder("--model_name_or_path", model_args.model_name_or_path, "model")
    problems += _check_model_folder("--vision_tower", model_args.vision_tower, "vision tower")
    if training_args.max_nonfinite_steps < 1:
        problems.append(f"--max_nonfinite_steps {training_args.max_nonfinite_steps}: use 1 or more (default 3)")
    return problems
