"""Hugging Face Hub ids wherever a model path is taken: the one place files are fetched.

A ``model_path`` or ``model_base`` that is not an existing local folder is a
Hub id (``liuhaotian/llava-v1.5-7b``), as upstream treats it. The small files
that decide what a checkpoint is (configs, adapter, ``non_lora_trainables.bin``,
``mm_projector.bin``, tokenizer files) are fetched with ``huggingface_hub``
into its cache (``HF_HUB_CACHE``; ``HF_HUB_OFFLINE=1`` uses the cache only), and
the caller works on the local snapshot folder. Large weights are left to
``from_pretrained``, which shares the same cache.
"""

from __future__ import annotations

import os
from pathlib import Path

# What a loader reads itself (everything but the language model's weight shards).
RUN_FILE_PATTERNS = [
    "*.json",
    "tokenizer.model",
    "adapter_model.safetensors",
    "adapter_model.bin",
    "non_lora_trainables.bin",
    "mm_projector.bin",
]


def is_local(path: str | os.PathLike) -> bool:
    return Path(path).exists()


def _check_repo_id(repo_id: str) -> None:
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError:
        raise FileNotFoundError(
            f"{repo_id}: no such folder (nor a Hugging Face Hub id such as liuhaotian/llava-v1.5-7b); check the path"
        ) from None


def local_folder(path_or_id: str | os.PathLike, revision: str | None = None) -> Path:
    """A local folder for ``path_or_id``: the folder itself, or the Hub snapshot of the loader's files.

    Weight shards are not fetched (``from_pretrained`` fetches them into the same cache).
    Raises ``FileNotFoundError`` naming the id when it is neither a folder nor on the Hub (or in the cache).
    """
    if is_local(path_or_id):
        return Path(path_or_id)
    repo_id = str(path_or_id)
    _check_repo_id(repo_id)
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError, RepositoryNotFoundError

    try:
        return Path(snapshot_download(repo_id, revision=revision, allow_patterns=RUN_FILE_PATTERNS))
    except (LocalEntryNotFoundError, RepositoryNotFoundError) as error:
        raise FileNotFoundError(
            f"{repo_id} is not a local folder and could not be fetched from the Hugging Face Hub "
            f"(offline: HF_HUB_OFFLINE={os.environ.get('HF_HUB_OFFLINE', '0')}; cache: "
            f"HF_HUB_CACHE={os.environ.get('HF_HUB_CACHE', 'default')}): {error}"
        ) from error


def hub_file(repo_id: str, filename: str, revision: str | None = None) -> Path | None:
    """``filename`` from the Hub repo ``repo_id`` (or the cache), or ``None`` where it has none."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
    )

    try:
        return Path(hf_hub_download(repo_id, filename, revision=revision))
    except (EntryNotFoundError, LocalEntryNotFoundError, RepositoryNotFoundError, HFValidationError):
        return None
