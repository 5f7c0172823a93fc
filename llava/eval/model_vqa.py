"""Answer a question file with a LLaVA checkpoint (upstream's ``model_vqa.py``), batched.

    python -m llava.eval.model_vqa --model-path checkpoints/llava-v1.5-7b-okvqa-qlora \
        --model-base liuhaotian/llava-v1.5-7b --question-file playground/data/okvqa/val_questions.jsonl \
        --image-folder playground/data/coco --answers-file answers/okvqa_val.jsonl \
        --conv-mode vicuna_v1 --temperature 0 --batch-size 32

Reads JSONL questions (``question_id``, ``image``, ``text``) and writes JSONL
answers (``question_id``, ``prompt``, ``text``, ``answer_id``, ``model_id``,
``metadata``), as upstream. Beyond upstream: ``--batch-size`` (greedy answers
equal batch size 1), ``--max-new-tokens``, a progress bar, and resuming: question
ids already in the answers file are skipped, so a killed run continues where it
stopped. Shard over GPUs with ``--num-chunks N --chunk-idx K``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from llava.flags import Parser
from llava.utils import jsonl_records


def split_list(items: list, parts: int) -> list[list]:
    """``parts`` consecutive chunks of (roughly) equal size, as upstream splits."""
    size = math.ceil(len(items) / parts)
    return [items[i : i + size] for i in range(0, len(items), size)]


def get_chunk(items: list, parts: int, index: int) -> list:
    chunks = split_list(items, parts)
    return chunks[index] if index < len(chunks) else []


def read_questions(path: str) -> list[dict]:
    """The questions of a JSONL question file; ValueError naming every bad line."""
    questions, problems = [], []
    for line_number, question in jsonl_records(os.path.expanduser(path), problems):
        missing = [key for key in ("question_id", "text") if key not in question]
        if missing:
            problems.append(f"{path}:{line_number}: question lacks {missing}")
        else:
            questions.append(question)
    if problems:
        raise ValueError("\n".join(problems))
    if not questions:
        raise ValueError(f"--question-file {path}: no questions in it (one JSON object per line)")
    return questions


def answered_ids(path: Path) -> set:
    """Question ids already answered; a torn last line (a killed run) is cut off."""
    if not path.exists():
        return set()
    done, good_bytes = set(), 0
    with open(path, "rb") as handle:
        for raw in handle:
            try:
                done.add(json.loads(raw)["question_id"])
            except (json.JSONDecodeError, KeyError, UnicodeDecodeError):
                break
            good_bytes += len(raw)
    if good_bytes != path.stat().st_size:
        with open(path, "r+b") as handle:
            handle.truncate(good_bytes)
    return done


def _batches(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start : start + size]


# Questions are sorted by length within windows of this many batches: less padding in each
# prompt batch, while the answers file still follows the question file window by window.
SORT_WINDOW_BATCHES = 8


def length_sorted(questions: list, batch_size: int) -> list:
    """``questions`` with each window of ``SORT_WINDOW_BATCHES`` batches sorted by (image, text length)."""
    window = max(batch_size, 1) * SORT_WINDOW_BATCHES
    ordered = []
    for start in range(0, len(questions), window):
        chunk = questions[start : start + window]
        ordered += sorted(chunk, key=lambda q: (not q.get("image"), len(q.get("text", ""))))
    return ordered


def prefetched(prepare: Callable[[Any], Any], items: Sequence, ahead: int = 2) -> Iterator[Any]:
    """``prepare(item)`` for each item in order, computed up to ``ahead`` items early in one thread.

    Reading and resizing a batch of pictures (tens of ms each) then overlaps the model's
    answering of the batch before; an error surfaces when its item is reached.
    """
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="prefetch") as pool:
        pending: deque = deque()
        for item in items:
            pending.append(pool.submit(prepare, item))
            if len(pending) > ahead:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def eval_model(args: argparse.Namespace) -> Path:
    """Answer every not-yet-answered question of this chunk; returns the answers file."""
    from llava.conversation import conv_templates
    from llava.eval.generation import GenerationSettings, answer_batch, build_prompt
    from llava.images import open_image
    from llava.mm_utils import get_model_name_from_path, process_images
    from llava.model.mm_config import mm_setting
    from llava.run_record import choose_conv_mode

    questions = get_chunk(read_questions(args.question_file), args.num_chunks, args.chunk_idx)
    answers_path = Path(os.path.expanduser(args.answers_file))
    answers_path.parent.mkdir(parents=True, exist_ok=True)
    done = answered_ids(answers_path)
    todo = [q for q in questions if q["question_id"] not in done]
    if done:
        print(f"resuming: {len(questions) - len(todo)} of {len(questions)} questions already answered")
    if not todo:
        return answers_path

    model_name = get_model_name_from_path(os.path.expanduser(args.model_path))
    tokenizer, model, image_processor, _ = load_model_from_args(args, model_name)
    template = conv_templates[choose_conv_mode(os.path.expanduser(args.model_path), args.conv_mode, UPSTREAM_CONV_MODE)]
    settings = GenerationSettings(
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        top_p=args.top_p,
        num_beams=args.num_beams,
        kv_cache=args.kv_cache,
    )
    mm_start_end = mm_setting(model.config, "mm_use_im_start_end")

    def prepare(group: list) -> tuple[list, list[str], Any]:
        """A group's prompts and images, read and processed (in a thread, while the model answers)."""
        has_image = bool(group[0].get("image"))
        prompts = [build_prompt(q["text"], template, has_image, mm_start_end) for q in group]
        images = None
        if has_image:
            pictures = [open_image(os.path.join(args.image_folder, q["image"])) for q in group]
            images = process_images(pictures, image_processor, model.config)
        return group, prompts, images

    groups = []
    for batch in _batches(length_sorted(todo, args.batch_size), args.batch_size):
        with_image = [bool(q.get("image")) for q in batch]
        # Mixed batches would need per-row images; answer them one by one.
        groups += [[q] for q in batch] if any(with_image) and not all(with_image) else [batch]
    with open(answers_path, "a") as out, tqdm(total=len(todo), desc="answering", unit="q") as progress:
        for group, prompts, images in prefetched(prepare, groups):
            texts = answer_batch(model, tokenizer, prompts, images, settings)
            for question, text in zip(group, texts, strict=True):
                record = {
                    "question_id": question["question_id"],
                    "prompt": question["text"],
                    "text": text,
                    "answer_id": uuid.uuid4().hex[:22],
                    "model_id": model_name,
                    "metadata": {},
                }
                out.write(json.dumps(record) + "\n")
            out.flush()
            progress.update(len(group))
    return answers_path


UPSTREAM_CONV_MODE = "llava_v1"  # upstream's --conv-mode default, for models that record no template
KV_CACHES = ("dynamic", "static")  # llava.eval.generation.KV_CACHES, without importing torch for --help


def add_model_arguments(
    parser: argparse.ArgumentParser, model_path_required: bool = False, exclusive_bits: bool = False
) -> None:
    """The model-loading flags upstream's answering and serving scripts share (``load_pretrained_model``'s).

    ``--model-path`` defaults to upstream's ``facebook/opt-350m`` unless ``model_path_required``;
    ``exclusive_bits`` refuses ``--load-8bit`` with ``--load-4bit``.
    """
    if model_path_required:
        parser.add_argument("--model-path", type=str, required=True, help="checkpoint folder, run folder or Hub id")
    else:
        parser.add_argument(
            "--model-path", type=str, default="facebook/opt-350m", help="checkpoint folder, run folder or Hub id"
        )
    parser.add_argument("--model-base", type=str, default=None, help="base model of a LoRA or projector-only run")
    parser.add_argument("--device", type=str, default="cuda", help="cuda (falls back to cpu without CUDA) or cpu")
    bits = parser.add_mutually_exclusive_group() if exclusive_bits else parser
    bits.add_argument("--load-8bit", action="store_true")
    bits.add_argument("--load-4bit", action="store_true")
    parser.add_argument(
        "--allow-base-mismatch",
        action="store_true",
        help="load a LoRA / projector run on a --model-base other than the one it recorded",
    )
    parser.add_argument(
        "--use-kernels",
        "--use_kernels",
        dest="use_kernels",
        action="store_true",
        help="let transformers fetch and run Hub kernels (kernels-community/...) while loading; off by default",
    )


def load_model_from_args(args: argparse.Namespace, model_name: str | None = None):
    """``load_pretrained_model`` on what :func:`add_model_arguments`' flags say.

    Returns ``(tokenizer, model, image_processor, context_len)``; ``model_name``
    defaults to the name upstream derives from ``--model-path``.
    """
    from llava.mm_utils import get_model_name_from_path
    from llava.model.builder import load_pretrained_model

    model_path = os.path.expanduser(args.model_path)
    return load_pretrained_model(
        model_path,
        args.model_base,
        model_name or get_model_name_from_path(model_path),
        load_8bit=args.load_8bit,
        load_4bit=args.load_4bit,
        device=args.device,
        allow_base_mismatch=args.allow_base_mismatch,
        use_kernels=getattr(args, "use_kernels", False),
    )


def add_arguments(parser: argparse.ArgumentParser, max_new_tokens: int = 1024, batch_size: int = 1) -> None:
    """Upstream's flags of ``model_vqa.py`` / ``model_vqa_loader.py`` and ours (``--batch-size``, ...)."""
    add_model_arguments(parser)
    parser.add_argument(
        "--image-folder", type=str, default="", help="folder the questions' image paths are relative to"
    )
    parser.add_argument("--question-file", type=str, default="tables/question.jsonl")
    parser.add_argument("--answers-file", type=str, default="answer.jsonl", help="JSONL output")
    parser.add_argument(
        "--conv-mode",
        type=str,
        default=None,
        help="conversation template (vicuna_v1 for LLaVA-1.5); default: the one the run was trained with "
        f"(its eval/run.json or config.json), else upstream's {UPSTREAM_CONV_MODE}",
    )
    parser.add_argument("--num-chunks", type=int, default=1, help="split the questions into this many shards")
    parser.add_argument("--chunk-idx", type=int, default=0, help="which shard this process answers")
    parser.add_argument("--temperature", type=float, default=0.2, help="0 for greedy decoding")
    parser.add_argument(
        "--top_p", "--top-p", dest="top_p", type=float, default=None, help="nucleus sampling (with --temperature > 0)"
    )
    parser.add_argument("--num_beams", "--num-beams", dest="num_beams", type=int, default=1, help="beam search width")
    parser.add_argument(
        "--max-new-tokens",
        "--max_new_tokens",
        dest="max_new_tokens",
        type=int,
        default=max_new_tokens,
        help=f"longest answer in tokens (default {max_new_tokens}, upstream's)",
    )
    parser.add_argument("--batch-size", type=int, default=batch_size, help="questions per generate() call")
    parser.add_argument(
        "--kv-cache",
        choices=KV_CACHES,
        default="dynamic",
        help="static: a preallocated KV cache, whose decode step transformers compiles on a GPU (same greedy "
        "answers; docs/PERFORMANCE.md has the figures)",
    )


def build_parser() -> argparse.ArgumentParser:
    from llava.entry import HelpFormatter

    parser = Parser(
        formatter_class=HelpFormatter,
        prog="python -m llava.eval.model_vqa",
        description="Answer a JSONL question file with a LLaVA checkpoint (batched, resumable).",
    )
    add_arguments(parser)
    return parser


def complete_args(args, parser: argparse.ArgumentParser) -> argparse.Namespace:
    """``args`` (a Namespace, or upstream's ``type('Args', (), {...})()`` object) with every flag
    ``parser`` knows that ``args`` lacks set to its default, so upstream's callers of ``eval_model`` work."""
    destinations = [
        action.dest for action in parser._actions if action.dest != argparse.SUPPRESS and action.dest != "help"
    ]
    complete = argparse.Namespace(**{name: parser.get_default(name) for name in destinations})
    for name in destinations:
        if hasattr(args, name):
            setattr(complete, name, getattr(args, name))
    return complete


def check_args(args: argparse.Namespace) -> None:
    if args.batch_size < 1 or args.num_chunks < 1 or not 0 <= args.chunk_idx < args.num_chunks:
        raise SystemExit("--batch-size and --num-chunks must be >= 1 and 0 <= --chunk-idx < --num-chunks")


def main(argv: list[str] | None = None) -> Path:
    args = build_parser().parse_args(argv)
    check_args(args)
    return eval_model(args)


if __name__ == "__main__":
    from llava.entry import run

    sys.exit(run(main))
