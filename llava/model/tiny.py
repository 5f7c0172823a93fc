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
        model_type="bpe",
        vocab_size=vocab_size,
        byte_fallback=True,
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        character_coverage=1.0,
        split_digits=True,
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        hard_vocab_limit=False,
        num_threads=1,
        minloglevel=2,
    )
    # The file name matters: transformers converts ``tokenizer.model`` on load.
    (out / "tokenizer.model").write_bytes(model_bytes.getvalue())
    tokenizer = LlamaTokenizer.from_pretrained(str(out), add_bos_token=True, legacy=False)
    tokenizer.save_pretrained(str(out))
    return tokenizer
