"""Tiny model factory: a small random LLaVA in upstream's checkpoint layout.

Tests, the CPU demo and benchmarks need a model without downloading one. This
module trains a SentencePiece tokenizer in memory, builds a tiny Llama and a
tiny CLIP vision tower with seeded weights, and writes them as upstream does:

    OUT/                      the LLaVA checkpoint (config.json with mm_* keys,
                              model.safetensors, tokenizer files)
    OUT/clip-vision-tower/    the CLIP tower that config.mm_vision_tower names

Run:
    python -m llava.model.tiny --out /tmp/tiny-llava            # seconds, CPU
    python -m llava.model.tiny --out /tmp/llava-7b-shaped --preset llava-v1.5-7b

The ``llava-v1.5-7b`` preset has LLaVA-1.5-7B's shapes with random weights,
for GPU benchmarks only (about 14 GB in bf16).
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

# Sentences the tokenizer learns from: every template's fixed text, so prompts
# tokenize into sensible pieces, plus the words of the synthetic demo data.
_TEMPLATE_TEXT = [
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions.",
    "A chat between a curious human and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the human's questions.",
    "You are a helpful language and vision assistant. You are able to understand the visual "
    "content that the user provides, and assist the user with a variety of tasks using natural language.",
    "USER: ASSISTANT: Human: Assistant: ### [INST] [/INST] <<SYS>> <</SYS>>",
    "Answer the question using a single word or phrase.",
    "What colour is the shape? What shape is drawn? What is in the picture? How many?",
    "red green blue yellow purple orange white black circle square triangle cross star",
    "one two three four five six seven eight nine ten zero yes no",
    "the a an is of in on at to and or what which who where when why how this that it",
    "0 1 2 3 4 5 6 7 8 9 . , ? ! : ; ' \" ( ) [ ] < > / - _",
]


def _tokenizer_corpus() -> list[str]:
    # Repetition gives BPE enough counts to merge whole words.
    return [line for line in _TEMPLATE_TEXT for _ in range(20)]


# SentencePiece options for a Llama-style BPE, by concern: special ids (no pad), how text is
# split, and a deterministic (one thread), quiet run.
_SPM_IDS = dict(unk_id=0, bos_id=1, eos_id=2, pad_id=-1)
_SPM_SPLITTING = dict(model_type="bpe", byte_fallback=True, split_digits=True, character_coverage=1.0)
_SPM_TEXT = dict(normalization_rule_name="identity", remove_extra_whitespaces=False)
_SPM_RUN = dict(hard_vocab_limit=False, num_threads=1, minloglevel=2)


def build_tiny_tokenizer(out_dir: str | os.PathLike, vocab_size: int = 512):
    """Train a SentencePiece BPE Llama tokenizer in memory and save it to ``out_dir``.

    Deterministic (one thread, fixed corpus). Ids: unk 0, bos 1, eos 2, no pad
    token (the caller sets ``pad_token = unk_token`` as upstream training does).
    Returns the loaded ``LlamaTokenizer``.
    """
    import sentencepiece as spm
    from transformers import LlamaTokenizer

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model_bytes = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(_tokenizer_corpus()),
        model_writer=model_bytes,
        vocab_size=vocab_size,
        **_SPM_IDS,
        **_SPM_SPLITTING,
        **_SPM_TEXT,
        **_SPM_RUN,
    )
    # The file name matters: transformers converts ``tokenizer.model`` on load.
    (out / "tokenizer.model").write_bytes(model_bytes.getvalue())
    tokenizer = LlamaTokenizer.from_pretrained(str(out), add_bos_token=True, legacy=False)
    tokenizer.save_pretrained(str(out))
    return tokenizer


def _sizes(hidden: int, intermediate: int, layers: int, heads: int) -> dict:
    """The config keywords a Llama and a CLIP tower share."""
    return dict(
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_hidden_layers=layers,
        num_attention_heads=heads,
    )


def _llama(hidden: int, intermediate: int, layers: int, heads: int, positions: int, **extra) -> dict:
    """Llama config keywords: a model of these sizes (no grouped-query attention)."""
    return {
        **_sizes(hidden, intermediate, layers, heads),
        "num_key_value_heads": heads,
        "max_position_embeddings": positions,
        "rms_norm_eps": 1e-5,
        **extra,
    }


def _clip(hidden: int, intermediate: int, layers: int, heads: int, image: int, patch: int) -> dict:
    """CLIP vision config keywords: a tower of these sizes, projecting to ``hidden`` (tiny) or 768."""
    sizes = _sizes(hidden, intermediate, layers, heads)
    return {**sizes, "image_size": image, "patch_size": patch, "projection_dim": min(hidden, 768)}


# Model shapes per preset. ``tiny`` runs a training step in milliseconds on a
# CPU; ``llava-v1.5-7b`` has LLaVA-1.5-7B's shapes (random weights).
PRESETS: dict[str, dict] = {
    # A frozen head initialised at 0.02 caps every logit near 1 after the final norm
    # (|h| = sqrt(64)), so LoRA could never make the tiny model confident; 0.1
    # (initializer_range) behaves like a trained head.
    "tiny": dict(
        text=_llama(64, 128, layers=2, heads=4, positions=1024, initializer_range=0.1),
        vision=_clip(32, 64, layers=2, heads=2, image=32, patch=8),
        vocab_size=512,
        model_max_length=512,
        dtype="float32",
    ),
    # The CPU benchmark's model (docs/PERFORMANCE.md): a 512-wide, 8-layer Llama on the tiny tower.
    "small": dict(
        text=_llama(512, 1408, layers=8, heads=8, positions=1024, initializer_range=0.02),
        vision=_clip(32, 64, layers=2, heads=2, image=32, patch=8),
        vocab_size=512,
        model_max_length=512,
        dtype="float32",
    ),
    "llava-v1.5-7b": dict(
        text=_llama(4096, 11008, layers=32, heads=32, positions=4096),
        vision=_clip(1024, 4096, layers=24, heads=16, image=336, patch=14),
        vocab_size=32000,
        model_max_length=2048,
        dtype="bfloat16",
    ),
}

VISION_SUBFOLDER = "clip-vision-tower"


def build_tiny_vision_tower(out_dir: str | os.PathLike, preset: str = "tiny", seed: int = 0) -> Path:
    """Write a random CLIP vision tower (weights + image processor) to ``out_dir``."""
    import torch
    from transformers import CLIPVisionConfig, CLIPVisionModel

    from llava.model.multimodal_encoder.clip_encoder import image_processor_class

    spec = PRESETS[preset]
    out = Path(out_dir)
    torch.manual_seed(seed)
    config = CLIPVisionConfig(**spec["vision"])
    model = CLIPVisionModel(config).to(getattr(torch, spec["dtype"]))
    model.save_pretrained(str(out))
    size = spec["vision"]["image_size"]
    image_processor_class()(size={"shortest_edge": size}, crop_size={"height": size, "width": size}).save_pretrained(
        str(out)
    )
    return out


def build_tiny_llava(
    out_dir: str | os.PathLike,
    preset: str = "tiny",
    seed: int = 0,
    projector_type: str = "mlp2x_gelu",
    vision_select_layer: int = -2,
    device: str = "cpu",
) -> Path:
    """Write a random LLaVA checkpoint in upstream's layout and return its folder.

    ``out_dir/clip-vision-tower`` holds the tower; ``config.mm_vision_tower``
    names it by absolute path so fine-tuned copies of the config still find it.
    """
    import torch

    from llava.model import LlavaConfig, LlavaLlamaForCausalLM

    if preset not in PRESETS:
        raise ValueError(f"Unknown preset {preset!r}; choose from {sorted(PRESETS)}")
    spec = PRESETS[preset]
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    tower_dir = build_tiny_vision_tower(out / VISION_SUBFOLDER, preset=preset, seed=seed)
    if preset == "tiny":
        tokenizer = build_tiny_tokenizer(out, vocab_size=spec["vocab_size"])
    else:
        # A 32,000-piece tokenizer cannot be learned from our small corpus; the
        # 7B-shaped preset is for speed measurements, so a small one will do and
        # the embedding table keeps the real 32,000 rows.
        tokenizer = build_tiny_tokenizer(out, vocab_size=PRESETS["tiny"]["vocab_size"])
    tokenizer.model_max_length = spec["model_max_length"]
    tokenizer.save_pretrained(str(out))

    config = LlavaConfig(
        vocab_size=max(spec["vocab_size"], len(tokenizer)),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=0,
        tie_word_embeddings=False,
        **spec["text"],
        mm_vision_tower=str(tower_dir),
        mm_hidden_size=spec["vision"]["hidden_size"],
        mm_projector_type=projector_type,
        mm_vision_select_layer=vision_select_layer,
        mm_vision_select_feature="patch",
        mm_patch_merge_type="flat",
        use_mm_proj=True,
        mm_use_im_start_end=False,
        mm_use_im_patch_token=False,
        image_aspect_ratio="pad",
        tokenizer_padding_side="right",
        tokenizer_model_max_length=spec["model_max_length"],
        tune_mm_mlp_adapter=False,
        freeze_mm_mlp_adapter=False,
        mm_projector_lr=None,
    )
    torch.manual_seed(seed)
    dtype = getattr(torch, spec["dtype"])
    if device == "cpu":
        model = LlavaLlamaForCausalLM(config).to(dtype)
    else:  # the 7B shapes: initialised on the GPU in their own dtype (on the CPU: 27 GB in fp32)
        with torch.device(device):
            model = LlavaLlamaForCausalLM._from_config(config, dtype=dtype)
    model.save_pretrained(str(out))
    return out


def main(argv: list[str] | None = None) -> None:
    import time

    from llava.entry import HelpFormatter
    from llava.flags import Parser

    parser = Parser(
        formatter_class=HelpFormatter,
        prog="python -m llava.model.tiny",
        description="Write a random LLaVA checkpoint (upstream layout) for tests, the CPU demo and benchmarks.",
    )
    parser.add_argument("--out", required=True, help="output folder (created; must be empty unless --overwrite)")
    parser.add_argument("--overwrite", action="store_true", help="write into a folder that is not empty")
    parser.add_argument("--preset", default="tiny", choices=sorted(PRESETS), help="model shapes (default: tiny)")
    parser.add_argument("--seed", type=int, default=0, help="weight seed (default: 0)")
    parser.add_argument("--projector-type", default="mlp2x_gelu", help="linear, identity or mlp<N>x_gelu")
    parser.add_argument(
        "--device", default="cpu", help="where the weights are initialised (cuda for the 7B preset; default: cpu)"
    )
    args = parser.parse_args(argv)
    out = Path(args.out)
    if out.is_dir() and any(out.iterdir()) and not args.overwrite:
        raise FileExistsError(f"--out {out}: the folder is not empty; choose another or pass --overwrite")
    start = time.perf_counter()
    out = build_tiny_llava(
        args.out, preset=args.preset, seed=args.seed, projector_type=args.projector_type, device=args.device
    )
    print(f"wrote {args.preset} LLaVA to {out} in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    from llava.entry import run

    sys.exit(run(main))
