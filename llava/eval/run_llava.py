"""Upstream's quick start: ask one question about one or more images and print the answer.

    python -m llava.eval.run_llava --model-path liuhaotian/llava-v1.5-7b \
        --image-file https://llava-vl.github.io/static/images/view.jpg \
        --query "What are the things I should be cautious about when I visit here?"

    python -m llava.eval.run_llava --model-path checkpoints/llava-v1.5-7b-okvqa-lora \
        --model-base liuhaotian/llava-v1.5-7b --image-file a.jpg,b.jpg --sep , \
        --query "What differs between <image-placeholder> and <image-placeholder>?"

Flags as upstream: ``--model-path --model-base --image-file --query
[--conv-mode --sep --temperature --top_p --num_beams --max_new_tokens]``;
``eval_model(args)`` takes upstream's argument object (a Namespace or its
README's ``type('Args', (), {...})()``) and returns the answer it prints.
``--image-file`` holds several images separated by ``--sep``; each
``<image-placeholder>`` in the query marks where one goes, else they go in
front of the question. The template follows upstream's choice from the model
name unless ``--conv-mode`` says otherwise. Images are paths or http(s) URLs.

Deviations from upstream: several images without placeholders get one image
token each (upstream put one token in front, and its model used only the
first image); ``--device`` and ``--load-4bit``/``--load-8bit`` are added.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys

from llava.eval.model_vqa import add_model_arguments, load_model_from_args
from llava.flags import Parser

logger = logging.getLogger("llava")


def build_parser() -> argparse.ArgumentParser:
    from llava.entry import HelpFormatter

    parser = Parser(
        formatter_class=HelpFormatter,
        prog="python -m llava.eval.run_llava",
        description="Answer one query about one or more images with a LLaVA model.",
    )
    add_model_arguments(parser)
    parser.add_argument("--image-file", type=str, required=True, help="image path(s) or URL(s), joined by --sep")
    parser.add_argument("--query", type=str, required=True)
    parser.add_argument(
        "--conv-mode",
        type=str,
        default=None,
        help="template (default: the one the run was trained with, else chosen from the model name)",
    )
    parser.add_argument("--sep", type=str, default=",", help="separator between several --image-file entries")
    parser.add_argument("--temperature", type=float, default=0.2, help="0 for greedy decoding")
    parser.add_argument(
        "--top_p", "--top-p", dest="top_p", type=float, default=None, help="nucleus sampling (with --temperature > 0)"
    )
    parser.add_argument("--num_beams", "--num-beams", dest="num_beams", type=int, default=1, help="beam search width")
    parser.add_argument("--max_new_tokens", "--max-new-tokens", dest="max_new_tokens", type=int, default=512)
    return parser


def conv_mode_for(model_name: str) -> str:
    """Upstream's template choice from the model name."""
    from llava.conversation import conv_mode_for_model

    return conv_mode_for_model(model_name)


def image_files(image_file: str, sep: str) -> list[str]:
    files = [name for name in image_file.split(sep) if name]
    if not files:
        raise ValueError(f"--image-file {image_file!r} names no image")
    return files


def load_image(image_file: str):
    """An RGB PIL image from a path or an http(s) URL (``llava.images.open_image``).

    A missing file is an error naming it.
    """
    from llava.images import open_image

    if image_file.startswith(("http://", "https://")):
        from urllib.error import URLError
        from urllib.request import urlopen

        try:
            with urlopen(image_file, timeout=60) as response:
                return open_image(response.read(), label=image_file)
        except URLError as error:  # no network (a compute node), a bad host, a 404
            reason = getattr(error, "reason", error)
            raise OSError(
                f"--image-file {image_file}: cannot download it ({reason}); download the picture and pass its path"
            ) from None
    path = os.path.expanduser(image_file)
    if not os.path.exists(path):
        raise FileNotFoundError(f"--image-file {image_file}: no such file")
    return open_image(path)


def query_with_images(query: str, num_images: int, mm_use_im_start_end: bool) -> str:
    """The user message: each ``<image-placeholder>`` becomes an image token, else the tokens go in front."""
    from llava.constants import (
        DEFAULT_IM_END_TOKEN,
        DEFAULT_IM_START_TOKEN,
        DEFAULT_IMAGE_TOKEN,
        IMAGE_PLACEHOLDER,
    )

    token = (
        DEFAULT_IM_START_TOKEN + DEFAULT_IMAGE_TOKEN + DEFAULT_IM_END_TOKEN
        if mm_use_im_start_end
        else DEFAULT_IMAGE_TOKEN
    )
    placeholders = query.count(IMAGE_PLACEHOLDER)
    if placeholders:
        if placeholders != num_images:
            raise ValueError(
                f"--query has {placeholders} {IMAGE_PLACEHOLDER} but --image-file names {num_images} images"
            )
        return re.sub(re.escape(IMAGE_PLACEHOLDER), token, query)
    return (token + "\n") * num_images + query


def eval_model(args) -> str:
    """Load the model, answer ``args.query`` about ``args.image_file``, print and return the answer."""
    from llava.conversation import conv_templates
    from llava.eval.generation import GenerationSettings, answer_batch, build_prompt
    from llava.eval.model_vqa import complete_args
    from llava.mm_utils import get_model_name_from_path, process_images
    from llava.model.mm_config import mm_setting
    from llava.utils import disable_torch_init

    args = complete_args(args, build_parser())
    missing = [name for name in ("image_file", "query") if getattr(args, name) is None]
    if missing:
        raise ValueError(f"eval_model needs {', '.join(missing)} (--image-file, --query)")
    disable_torch_init()
    model_path = os.path.expanduser(args.model_path)
    model_name = get_model_name_from_path(model_path)
    from llava.run_record import recorded_conv_mode

    conv_mode = recorded_conv_mode(os.path.expanduser(args.model_path)) or conv_mode_for(model_name)
    if args.conv_mode is None and conv_mode != conv_mode_for(model_name):
        logger.info("Using --conv-mode %s, the template the run was trained with (--conv-mode overrides).", conv_mode)
    if args.conv_mode is not None and args.conv_mode != conv_mode:
        logger.info("Using --conv-mode %s (the model name suggests %s).", args.conv_mode, conv_mode)
        conv_mode = args.conv_mode
    if conv_mode not in conv_templates:
        raise ValueError(
            f"--conv-mode {conv_mode!r} is not a template; choose one of {', '.join(sorted(conv_templates))}"
        )

    tokenizer, model, image_processor, _ = load_model_from_args(args, model_name)
    images = [load_image(name) for name in image_files(args.image_file, args.sep)]
    question = query_with_images(args.query, len(images), bool(mm_setting(model.config, "mm_use_im_start_end")))
    prompt = build_prompt(question, conv_templates[conv_mode], with_image=False)
    pixels = process_images(images, image_processor, model.config)
    settings = GenerationSettings(
        max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_p=args.top_p, num_beams=args.num_beams
    )
    answer = answer_batch(model, tokenizer, [prompt], pixels, settings)[0]
    print(answer)
    return answer


def main(argv: list[str] | None = None) -> str:
    return eval_model(build_parser().parse_args(argv))


if __name__ == "__main__":
    from llava.entry import run

    sys.exit(run(main))
