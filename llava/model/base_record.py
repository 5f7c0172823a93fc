"""Which base a LoRA or projector-only run was trained on, and the check when it is loaded.

Training records ``llava_base`` in the run's ``config.json`` (and every
checkpoint's): the base's ``--model_name_or_path`` and a fingerprint of its
weights. Loading the run on another base (same shapes, different weights: it
would answer garbage silently) then stops with both names, unless the caller
passes ``allow_base_mismatch=True`` (``--allow-base-mismatch`` on the command
lines). Runs without the record (upstream's, older ones) load as before.

The record holds a sample of the base's input embedding matrix: 16 rows spread
over its first ``FINGERPRINT_ROWS`` rows, 32 columns each, as float32. Embeddings
are never quantized and those rows survive tokenizer resizing. The check compares
the sample with what the loaded base holds, within a tolerance that covers fp16 and
bf16 rounding (including double rounding, fp32 -> fp16 -> bf16) but not another
set of weights: so the same base passes whether it was stored or loaded in fp32,
fp16, bf16, 4-bit or 8-bit (``tests/model/test_base_record.py`` tries that whole
grid). ``fingerprint`` (SHA-256 of the rows rounded to bf16) is kept for people to
read and for runs recorded before the sample existed, which are checked by it.

Deviation from upstream: upstream loads a run on any base of the right shape.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
from pathlib import Path

import numpy as np
import torch

logger = logging.getLogger("llava")

CONFIG_KEY = "llava_base"
FINGERPRINT_ROWS = 256


SAMPLE_ROWS = 16
SAMPLE_COLUMNS = 32
# fp16 and bf16 round to 2**-11 and 2**-8 relative; one load in each, with double rounding,
# stays within 2**-7. Two different weight matrices agree on one value this closely only by rare
# chance, and on all SAMPLE_ROWS x SAMPLE_COLUMNS of them never.
RELATIVE_TOLERANCE = 2**-6
ABSOLUTE_TOLERANCE = 1e-5  # fp16 subnormals (below 6e-5) keep only absolute precision


def fingerprint_embeddings(weight: torch.Tensor) -> str:
    """``sha256:<hex>`` of the first rows of an (already gathered) input embedding matrix, rounded to bf16."""
    rows = weight.detach()[:FINGERPRINT_ROWS].to(device="cpu", dtype=torch.bfloat16).contiguous()
    digest = hashlib.sha256(str(tuple(rows.shape)).encode())
    digest.update(rows.view(torch.int16).numpy().tobytes())
    return "sha256:" + digest.hexdigest()[:32]


def embedding_sample(weight: torch.Tensor) -> torch.Tensor:
    """Float32 values at fixed rows and columns of an (already gathered) input embedding matrix."""
    rows = min(FINGERPRINT_ROWS, weight.shape[0])
    row_index = torch.linspace(0, rows - 1, SAMPLE_ROWS).round().long().unique()
    column_index = torch.linspace(0, weight.shape[1] - 1, SAMPLE_COLUMNS).round().long().unique()
    picked = weight.detach()[row_index.to(weight.device)][:, column_index.to(weight.device)]
    return picked.to(device="cpu", dtype=torch.float32).contiguous()


def encode_sample(sample: torch.Tensor) -> str:
    """``f32:<rows>x<columns>:<base64>``: compact text for ``config.json``."""
    rows, columns = sample.shape
    payload = base64.b64encode(sample.numpy().astype("<f4").tobytes()).decode("ascii")
    return f"f32:{rows}x{columns}:{payload}"


def decode_sample(text: str) -> torch.Tensor:
    """The tensor :func:`encode_sample` wrote (ValueError on anything else)."""
    try:
        kind, shape, payload = text.split(":", 2)
        rows, columns = (int(part) for part in shape.split("x"))
        values = np.frombuffer(base64.b64decode(payload, validate=True), dtype="<f4")
        if kind != "f32" or values.size != rows * columns:
            raise ValueError("size")
    except (ValueError, TypeError, binascii.Error) as error:
        raise ValueError(f"not an embedding sample written by this project: {text[:40]!r}") from error
    return torch.from_numpy(values.astype(np.float32).reshape(rows, columns))


def sample_difference(recorded: torch.Tensor, found: torch.Tensor) -> float:
    """Largest ``|found - recorded| / (ABS + REL * |recorded|)``: at most 1 for the same weights."""
    if recorded.shape != found.shape:
        return float("inf")
    scale = ABSOLUTE_TOLERANCE + RELATIVE_TOLERANCE * recorded.abs()
    return float(((found - recorded).abs() / scale).max()) if recorded.numel() else 0.0


def record_base(config, base_name: str, fingerprint: str, sample: torch.Tensor | None = None) -> None:
    """Store the base on the run's config (saved as ``config.json`` with every output)."""
    record = {"name": str(base_name), "fingerprint": fingerprint}
    if sample is not None:
        record["sample"] = encode_sample(sample)
    setattr(config, CONFIG_KEY, record)


def base_name_for_record(model_name_or_path: str) -> str:
    """The absolute folder for a local base, or the Hub id as given."""
    path = Path(model_name_or_path).expanduser()
    return str(path.resolve()) if path.exists() else str(model_name_or_path)


def record_from_weight(config, model_name_or_path: str, weight: torch.Tensor) -> None:
    """:func:`record_base` from the (gathered) input embedding matrix of the base as loaded."""
    record_base(
        config, base_name_for_record(model_name_or_path), fingerprint_embeddings(weight), embedding_sample(weight)
    )


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
    weight = model.get_input_embeddings().weight
    found = fingerprint_embeddings(weight)
    if "sample" in record:
        difference = sample_difference(decode_sample(str(record["sample"])), embedding_sample(weight))
        if difference <= 1.0:
            return
        detail = f"its embeddings differ from the recorded ones by {difference:.3g}x what dtype rounding allows"
    else:  # recorded before the sample existed: the exact fingerprint decides
        if found == record["fingerprint"]:
            return
        detail = f"its weights are {found}"
    message = (
        f"{run_dir} was trained on base {record['name']} (weights {record['fingerprint']}), but --model-base "
        f"{model_base} is another model ({detail}): the adapter would answer garbage on it."
    )
    if allow_base_mismatch:
        logger.warning("%s Loading anyway (--allow-base-mismatch).", message)
        return
    raise ValueError(message + " Pass the base it was trained on, or --allow-base-mismatch to load it anyway.")
