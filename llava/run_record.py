"""What a training run records about its inputs, and how readers find it again.

Training writes ``eval/run.json`` in its output folder (rank 0, atomically) and keeps the
same record under ``llava_run`` in the config every output saves (checkpoints, the final
run, a merged model). It holds:

- the conversation template: ``version`` (``--version``) and ``conv_mode``, the template
  key answering should use for it (upstream's rule: the key itself when it names a
  template, ``vicuna_v1`` otherwise, the module default for ``v0``/``v0.5``);
- the absolute ``data_path``, ``image_folder``, ``validation_data_path`` and
  ``validation_image_folder``, with a SHA-256 of each data file.

Readers: the answering entry points take the template when ``--conv-mode`` is not given
(saying so in one log line), the evaluation browser takes the image folder when
``--image-folder`` is not given, and the scorer knows which questions a run's
``eval/epoch_N.jsonl`` covers. Runs without a record (upstream's, older ones) behave as
before: upstream's name rule picks the template.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from pathlib import Path

logger = logging.getLogger("llava")

CONFIG_KEY = "llava_run"
RUN_FILE = Path("eval") / "run.json"


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return "sha256:" + digest.hexdigest()


def conv_mode_for_version(version: str | None) -> str:
    """The answering template for a training ``--version`` (what ``template_for_version`` trains with)."""
    from llava.conversation import conv_templates, default_conversation

    if version in ("v0", "v0.5") or version is None:
        template = default_conversation
    else:
        template = conv_templates.get(version, conv_templates["vicuna_v1"])
    # The template's fullest name ("v1" and "vicuna_v1" are one template: say "vicuna_v1").
    return max((key for key, value in conv_templates.items() if value is template), key=len)


def _absolute(path: str | os.PathLike | None) -> str | None:
    return None if path in (None, "") else str(Path(path).expanduser().resolve())


def build_record(
    version: str | None,
    data_path: str | os.PathLike | None,
    image_folder: str | os.PathLike | None,
    validation_data_path: str | os.PathLike | None = None,
    validation_image_folder: str | os.PathLike | None = None,
) -> dict:
    """The record for these inputs (paths made absolute, data files hashed)."""
    record = {
        "version": version,
        "conv_mode": conv_mode_for_version(version),
        "data_path": _absolute(data_path),
        "image_folder": _absolute(image_folder),
        "validation_data_path": _absolute(validation_data_path),
        "validation_image_folder": _absolute(
            validation_image_folder or (image_folder if validation_data_path else None)
        ),
    }
    for key in ("data_path", "validation_data_path"):
        path = record[key]
        record[key.replace("_path", "_sha256")] = file_sha256(path) if path and Path(path).is_file() else None
    return record


def write_run_file(output_dir: str | os.PathLike, record: dict) -> Path:
    """``output_dir/eval/run.json``, written atomically."""
    from llava.utils import write_atomic

    path = Path(output_dir) / RUN_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(record, indent=1) + "\n")
    return path


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return None


def read_record(run_dir: str | os.PathLike) -> dict | None:
    """The record of the run (or model) in ``run_dir``: ``eval/run.json``, else ``config.json``'s ``llava_run``.

    None when there is none, or when it is unreadable (a folder from elsewhere is data: never an error here).
    """
    folder = Path(run_dir)
    for record in (_read_json(folder / RUN_FILE), (_read_json(folder / "config.json") or {}).get(CONFIG_KEY)):
        if isinstance(record, dict):
            return record
    return None


def recorded_conv_mode(model_path: str | os.PathLike) -> str | None:
    """The template the model at ``model_path`` was trained with, if it is a local folder that records one."""
    from llava.conversation import conv_templates

    if not Path(model_path).is_dir():
        return None
    record = read_record(model_path) or {}
    mode = record.get("conv_mode")
    return mode if isinstance(mode, str) and mode in conv_templates else None


def choose_conv_mode(model_path: str | os.PathLike, requested: str | None, fallback: str) -> str:
    """``requested``, else the recorded template (one log line), else ``fallback`` (upstream's choice)."""
    if requested is not None:
        return requested
    recorded = recorded_conv_mode(model_path)
    if recorded is not None:
        logger.info("Using --conv-mode %s, the template %s was trained with (pass --conv-mode to override).",
                    recorded, model_path)  # fmt: skip
        return recorded
    return fallback


def evaluated_questions(answers_path: str | os.PathLike) -> tuple[set[str], str] | None:
    """For a run's own ``RUN/eval/epoch_N.jsonl``: the question ids of the validation set it was
    evaluated on, and that file's path; None for any other answers file (or an unreadable record)."""
    path = Path(answers_path).resolve()
    # only what evaluation between epochs writes (eval/epoch_N.jsonl, eval/step_N.jsonl)
    if path.parent.name != RUN_FILE.parent.name or not re.fullmatch(r"(epoch|step)_\d+\.jsonl", path.name):
        return None
    validation = (read_record(path.parent.parent) or {}).get("validation_data_path")
    records = _read_json(Path(validation)) if isinstance(validation, str) else None
    if not isinstance(records, list):
        return None
    ids = {str(r.get("question_id", r.get("id"))) for r in records if isinstance(r, dict)}
    return ids, validation
