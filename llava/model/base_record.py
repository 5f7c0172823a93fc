"""Which base a LoRA or projector-only run was trained on, and the check when it is loaded.

Training records ``llava_base`` in the run's ``config.json`` (and every
checkpoint's): the base's ``--model_name_or_path`` and a fingerprint of its
weights. Loading the run on another base (same shapes, different weights: it
would answer garbage silently) then stops with both names, unless the caller
passes ``allow_base_mismatch=True`` (``--allow-base-mismatch`` on the command
lines). Runs without the record (upstream's, older ones) load as before.

The fingerprint is SHA-256 over the first ``FINGERPRINT_ROWS`` rows of the input
embedding matrix rounded to bfloat16: embeddings are never quantized, those
rows survive tokenizer resizing, and the rounding makes fp32, fp16 and bf16
copies of one base agree.

Deviation from upstream: upstream loads a run on any base of the right shape.
"""

from __future__ import annotations

import hashlib
import logging

import torch

logger = logging.getLogger("llava")

CONFIG_KEY = "llava_base"
FINGERPRINT_ROWS = 256


def fingerprint_embeddings(weight: torch.Tensor) -> str:
    """``sha256:<hex>`` of the first rows of an (already gathered) input embedding matrix."""
    rows = weight.detach()[:FINGERPRINT_ROWS].to(device="cpu", dtype=torch.bfloat16).contiguous()
    digest = hashlib.sha256(str(tuple(rows.shape)).encode())
    digest.update(rows.view(torch.int16).numpy().tobytes())
    return "sha256:" + digest.hexdigest()[:32]


def record_base(config, base_name: str, fingerprint: str) -> None:
    """Store the base on the run's config (saved as ``config.json`` with every output)."""
    setattr(config, CONFIG_KEY, {"name": str(base_name), "fingerprint": fingerprint})


def recorded_base(config) -> dict | None:
    """The ``llava_base`` record of a run's config, or None (upstream's runs have none)."""
    value = config.to_dict().get(CONFIG_KEY)
    return value if isinstance(value, dict) and "fingerprint" in value else None


def check_base(run_dir, run_config, model_base: str, model, allow_base_mismatch: bool = False) -> None:
    """Refuse (ValueError naming both bases) when ``model`` is not the base the run was trained on."""
    record = recorded_base(run_config)
    if record is None:
        logger.info("%s records no base model (an upstream or older run): not checked.", run_dir)
        return
    found = fingerprint_embeddings(model.get_input_embeddings().weight)
    if found == record["fingerprint"]:
        return
    message = (
        f"{run_dir} was trained on base {record['name']} (weights {record['fingerprint']}), but --model-base "
        f"{model_base} has different weights ({found}): the adapter would answer garbage on it."
    )
    if allow_base_mismatch:
        logger.warning("%s Loading anyway (--allow-base-mismatch).", message)
        return
    raise ValueError(message + " Pass the base it was trained on, or --allow-base-mismatch to load it anyway.")
