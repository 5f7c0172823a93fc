"""Merge a LoRA run into its base model and save a full LLaVA checkpoint (upstream's merge script).

Run from the repository root (on the CPU, as upstream does):

    python scripts/merge_lora_weights.py \
        --model-path checkpoints/llava-v1.5-7b-okvqa-lora \
        --model-base liuhaotian/llava-v1.5-7b \
        --save-model-path checkpoints/llava-v1.5-7b-okvqa-merged

The run folder is what ``--lora_enable True`` training wrote (``config.json``,
``adapter_config.json``, ``adapter_model.safetensors``,
``non_lora_trainables.bin``); a projector-only run (``mm_projector.bin``)
merges the same way. ``load_pretrained_model`` builds the base with the run's
config, applies the projector and merges the adapter; the result is saved with
``save_pretrained`` (model, config with every ``mm_*`` key, tokenizer) and
then loads with no base:

    load_pretrained_model("checkpoints/llava-v1.5-7b-okvqa-merged", None, "llava-v1.5-7b-okvqa-merged")

Deviations from upstream: the merge runs in float32 and the weights are
written in ``--dtype`` (default: the dtype the run recorded; upstream merges
and saves in float16), so expect 4 bytes per parameter of CPU memory (about
28 GB for 7B). The CLIP tower's weights are not written: no loader reads them
(the tower always loads from ``mm_vision_tower``). The folder is written under
a temporary name and renamed into place when complete; an existing folder is
replaced only with ``--overwrite``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: python scripts/merge_lora_weights.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from llava.export_hf import DTYPES, resolve_dtype  # noqa: E402
from llava.utils import atomic_output_dir  # noqa: E402

logger = logging.getLogger("llava")

TOWER_PREFIX = "model.vision_tower."
RUN_FILES = ("adapter_config.json", "mm_projector.bin")


def _run_config(model_path: Path) -> dict:
    import json

    if not (model_path / "config.json").exists() or not any((model_path / name).exists() for name in RUN_FILES):
        raise FileNotFoundError(
            f"{model_path} is not a LoRA (or projector-only) run: it needs config.json and one of "
            f"{', '.join(RUN_FILES)}. A full checkpoint needs no merging."
        )
    return json.loads((model_path / "config.json").read_text(encoding="utf-8"))


def merge_lora(
    model_path: str,
    model_base: str,
    save_model_path: str,
    device: str = "cpu",
    dtype: str = "auto",
    overwrite: bool = False,
    allow_base_mismatch: bool = False,
) -> Path:
    """Merge the run at ``model_path`` into ``model_base`` and save a full checkpoint at ``save_model_path``."""
    from llava.mm_utils import get_model_name_from_path
    from llava.model.builder import load_pretrained_model
    from llava.model.hub import local_folder
    from llava.model.tokenizer_files import save_tokenizer

    run = local_folder(model_path)  # a folder or a Hub id
    out_dtype = resolve_dtype(dtype, _run_config(run))
    out = Path(save_model_path).resolve()
    if out.exists() and not overwrite:  # fail before the (slow) load
        raise FileExistsError(f"{out} already exists: choose another --save-model-path or pass --overwrite")

    tokenizer, model, _, _ = load_pretrained_model(
        str(run),
        model_base,
        get_model_name_from_path(str(run)),
        device_map=device,
        device=device,
        dtype=torch.float32,
        allow_base_mismatch=allow_base_mismatch,
    )
    model.to(out_dtype)
    # Deviation from upstream: the CLIP tower is not saved (never read back; it loads from mm_vision_tower).
    state = {key: value for key, value in model.state_dict().items() if not key.startswith(TOWER_PREFIX)}
    with atomic_output_dir(out, overwrite=overwrite) as staging:
        model.save_pretrained(str(staging), state_dict=state)
        # tokenizer.model, special_tokens_map.json, tokenizer_config.json: upstream's slow tokenizer loads it
        save_tokenizer(tokenizer, staging, sources=(model_base, str(run)))
    logger.info("Merged %s into %s (%s, %d tensors) at %s", run, model_base, out_dtype, len(state), out)
    return out


def build_parser() -> argparse.ArgumentParser:
    from llava.entry import HelpFormatter
    from llava.flags import Parser

    parser = Parser(
        formatter_class=HelpFormatter,
        prog="python scripts/merge_lora_weights.py",
        description="Merge a LLaVA LoRA run (adapter + non_lora_trainables.bin) into its base model and save "
        "a full checkpoint that load_pretrained_model reads without --model-base.",
    )
    parser.add_argument(
        "--model-path",
        type=str,
        required=True,
        help="the LoRA run's --output_dir (holds adapter_config.json and non_lora_trainables.bin)",
    )
    parser.add_argument(
        "--model-base",
        type=str,
        required=True,
        help="the model the run was trained from, e.g. liuhaotian/llava-v1.5-7b",
    )
    parser.add_argument(
        "--save-model-path",
        type=str,
        required=True,
        help="output folder for the merged checkpoint (must not exist unless --overwrite)",
    )
    parser.add_argument(
        "--device", type=str, default="cpu", help="device to load and merge on (default cpu, as upstream)"
    )
    parser.add_argument(
        "--dtype",
        type=str,
        default="auto",
        choices=["auto", *DTYPES],
        help="dtype of the saved weights (default auto: the dtype the run's config records)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing --save-model-path once the merged checkpoint is complete",
    )
    parser.add_argument(
        "--allow-base-mismatch",
        action="store_true",
        help="merge into a --model-base other than the base the run recorded",
    )
    return parser


def main(argv: list[str] | None = None) -> Path:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    out = merge_lora(
        args.model_path,
        args.model_base,
        args.save_model_path,
        device=args.device,
        dtype=args.dtype,
        overwrite=args.overwrite,
        allow_base_mismatch=args.allow_base_mismatch,
    )
    print(f"wrote {out}")
    return out


if __name__ == "__main__":
    from llava.entry import run

    sys.exit(run(main))
