"""Save a tokenizer so that upstream LLaVA's slow SentencePiece tokenizer loads it too.

transformers 5 has no slow Llama tokenizer: ``save_pretrained`` writes
``tokenizer.json`` and a ``tokenizer_config.json`` but neither
``tokenizer.model`` nor ``special_tokens_map.json``. Upstream's loader
(``AutoTokenizer.from_pretrained(path, use_fast=False)`` under transformers
4.37) needs ``tokenizer.model`` (else ``TypeError: not a string``), reads the
special tokens from ``special_tokens_map.json`` and the slow tokenizer's
settings (``add_bos_token``, ``legacy``, ...) from ``tokenizer_config.json``.
``save_tokenizer`` writes all of them: today's files, the SentencePiece model
the tokenizer was built from, and the settings the slow tokenizer reads.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

from llava.utils import atomic_path, write_atomic

logger = logging.getLogger("llava")

SENTENCEPIECE_FILE = "tokenizer.model"
SPECIAL_TOKENS_FILE = "special_tokens_map.json"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
UPSTREAM_TOKENIZER_FILES = (SENTENCEPIECE_FILE, SPECIAL_TOKENS_FILE, TOKENIZER_CONFIG_FILE)
# Settings of the slow LlamaTokenizer that transformers 5 no longer writes.
SLOW_SETTINGS = ("add_bos_token", "add_eos_token", "legacy", "sp_model_kwargs", "spaces_between_special_tokens")


def sentencepiece_source(tokenizer, sources: tuple[str | os.PathLike | None, ...] = ()) -> Path | None:
    """The ``tokenizer.model`` this tokenizer was built from, or in one of ``sources``; ``None`` if none has one.

    ``sources`` may be local folders or Hub ids (fetched with huggingface_hub).
    """
    candidates: list[str | os.PathLike | None] = [tokenizer.init_kwargs.get("vocab_file")]
    candidates += [tokenizer.name_or_path, *sources]
    for candidate in candidates:
        if not candidate:
            continue
        path = Path(candidate)
        if path.is_file() and path.name == SENTENCEPIECE_FILE:
            return path
        if (path / SENTENCEPIECE_FILE).is_file():
            return path / SENTENCEPIECE_FILE
        if not path.exists():
            from llava.model.hub import hub_file

            found = hub_file(str(candidate), SENTENCEPIECE_FILE)
            if found is not None:
                return found
    return None


def _token_text(token) -> str | None:
    return None if token is None else str(token)


def save_tokenizer(
    tokenizer, output_dir: str | os.PathLike, sources: tuple[str | os.PathLike | None, ...] = ()
) -> list[str]:
    """``tokenizer.save_pretrained(output_dir)`` plus upstream's slow-tokenizer files; returns the files written.

    ``sources`` are folders or Hub ids to take ``tokenizer.model`` from when the
    tokenizer itself does not say where it came from (the base model, ...). A
    tokenizer with no SentencePiece model anywhere is saved with a warning:
    upstream's slow tokenizer cannot load it.
    """
    out = Path(output_dir)
    written = list(tokenizer.save_pretrained(str(out)))

    model_file = sentencepiece_source(tokenizer, sources)
    if model_file is None:
        logger.warning(
            "No %s found for the tokenizer (looked in %s): upstream LLaVA's slow tokenizer will not load %s.",
            SENTENCEPIECE_FILE,
            [tokenizer.name_or_path, *sources],
            out,
        )
    elif model_file.resolve() != (out / SENTENCEPIECE_FILE).resolve():
        with atomic_path(out / SENTENCEPIECE_FILE) as temporary:
            shutil.copyfile(model_file, temporary)
    if model_file is not None:
        written.append(str(out / SENTENCEPIECE_FILE))

    special = {
        name: _token_text(getattr(tokenizer, name)) for name in ("bos_token", "eos_token", "unk_token", "pad_token")
    }
    special = {name: value for name, value in special.items() if value is not None}
    write_atomic(out / SPECIAL_TOKENS_FILE, json.dumps(special, indent=2) + "\n")
    written.append(str(out / SPECIAL_TOKENS_FILE))

    config_path = out / TOKENIZER_CONFIG_FILE
    config = json.loads(config_path.read_text(encoding="utf-8")) if config_path.exists() else {}
    config.update(special)
    for name in SLOW_SETTINGS:
        if name in tokenizer.init_kwargs and name not in config:
            config[name] = tokenizer.init_kwargs[name]
    # What the tokenizer does, not its attributes (transformers 5 adds BOS in its
    # post-processor while ``add_bos_token`` may read False).
    probe = tokenizer("a").input_ids
    config["add_bos_token"] = bool(probe) and probe[0] == tokenizer.bos_token_id
    config["add_eos_token"] = bool(probe) and probe[-1] == tokenizer.eos_token_id
    # transformers 5 tokenizes as the slow tokenizer does with legacy=False (no extra
    # "▁" after a special token); without the key, 4.37 would pick legacy=True.
    config.setdefault("legacy", False)
    if "added_tokens_decoder" not in config:  # tokens added after training (<im_patch>, ...)
        config["added_tokens_decoder"] = {
            str(index): {
                "content": str(token),
                "lstrip": bool(token.lstrip),
                "normalized": bool(token.normalized),
                "rstrip": bool(token.rstrip),
                "single_word": bool(token.single_word),
                "special": bool(token.special),
            }
            for index, token in sorted(tokenizer.added_tokens_decoder.items())
        }
    config["padding_side"] = tokenizer.padding_side
    config["model_max_length"] = tokenizer.model_max_length
    config.setdefault("tokenizer_class", "LlamaTokenizer")
    write_atomic(config_path, json.dumps(config, indent=2, sort_keys=True) + "\n")
    return sorted(set(written) | {str(config_path)})
