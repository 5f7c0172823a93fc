"""Upstream's ``model_vqa_loader.py`` front: answer a question file, batched underneath.

Upstream's benchmark scripts (``scripts/v1_5/eval/*.sh``) call it like this,
and it runs unchanged:

    python -m llava.eval.model_vqa_loader --model-path liuhaotian/llava-v1.5-7b \
        --question-file ./playground/data/eval/textvqa/llava_textvqa_val_v051_ocr.jsonl \
        --image-folder ./playground/data/eval/textvqa/train_images \
        --answers-file ./playground/data/eval/textvqa/answers/llava-v1.5-7b.jsonl \
        --temperature 0 --conv-mode vicuna_v1 [--num-chunks 8 --chunk-idx 0]

Same flags as upstream (``--max_new_tokens`` default 128) and the same
answers file (one JSON line per question: ``question_id``, ``prompt``,
``text``, ``answer_id``, ``model_id``, ``metadata``). The work is
``llava.eval.model_vqa.eval_model``: batched generation with left padding
(greedy answers equal batch size 1), so there is one answering code path.

Deviations from upstream: ``--batch-size`` (default 8; upstream answers one
question at a time through a DataLoader), ``--device``, ``--load-4bit``/
``--load-8bit``, and ``--resume`` (keep answers already in the file; by
default the file is started afresh, as upstream).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from llava.eval import model_vqa
from llava.flags import Parser

DEFAULT_BATCH_SIZE = 8
UPSTREAM_MAX_NEW_TOKENS = 128


def build_parser() -> argparse.ArgumentParser:
    from llava.entry import HelpFormatter

    parser = Parser(
        formatter_class=HelpFormatter,
        prog="python -m llava.eval.model_vqa_loader",
        description="Answer a JSONL question file with a LLaVA checkpoint (upstream's model_vqa_loader flags).",
    )
    model_vqa.add_arguments(parser, max_new_tokens=UPSTREAM_MAX_NEW_TOKENS, batch_size=DEFAULT_BATCH_SIZE)
    parser.add_argument(
        "--resume", action="store_true", help="keep the answers already in --answers-file and answer only the rest"
    )
    return parser


def eval_model(args) -> Path:
    """Answer this chunk's questions into ``args.answers_file`` (upstream's arguments; ours default)."""
    args = model_vqa.complete_args(args, build_parser())
    model_vqa.check_args(args)
    answers = Path(os.path.expanduser(args.answers_file))
    if not args.resume:
        answers.unlink(missing_ok=True)  # upstream rewrites the file
    return model_vqa.eval_model(args)


def main(argv: list[str] | None = None) -> Path:
    return eval_model(build_parser().parse_args(argv))


if __name__ == "__main__":
    from llava.entry import run

    sys.exit(run(main))
