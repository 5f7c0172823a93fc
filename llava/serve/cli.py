"""Chat with a LLaVA checkpoint about one picture in the terminal (upstream's ``llava.serve.cli``).

    python -m llava.serve.cli --model-path liuhaotian/llava-v1.5-7b --image-file view.jpg --load-4bit
    python -m llava.serve.cli --model-path checkpoints/llava-v1.5-7b-okvqa-qlora \
        --model-base liuhaotian/llava-v1.5-7b --image-file view.jpg --conv-mode vicuna_v1
    printf 'What is it?\\nWhat colour?\\n' | python -m llava.serve.cli --model-path ... --image-file view.jpg

Each line typed (or piped) is a question; the reply is printed token by token
as it is generated. The picture is sent once, with the first question; later
questions continue the same conversation. An empty line or end of input
(Ctrl-D, or the end of a pipe) exits with status 0. Upstream's flags; the
template is inferred from the model's name unless ``--conv-mode`` is given.
Generation is the engine of ``llava.serve.chat``, shared with the web page.
"""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from llava.eval.generation import GenerationSettings
from llava.eval.model_vqa import add_model_arguments
from llava.flags import Parser


def load_image(image_file: str):
    """Upstream's name: the picture at ``image_file`` in RGB (``llava.serve.chat.open_image``)."""
    from llava.serve.chat import open_image

    return open_image(image_file)


def build_parser() -> argparse.ArgumentParser:
    from llava.entry import HelpFormatter

    parser = Parser(
        formatter_class=HelpFormatter,
        prog="python -m llava.serve.cli",
        description="Chat with a LLaVA checkpoint about one picture.",
    )
    add_model_arguments(parser)
    parser.add_argument("--image-file", type=str, required=True, help="the picture to talk about")
    parser.add_argument(
        "--conv-mode",
        type=str,
        default=None,
        help="conversation template (default: inferred from the model's name, as upstream)",
    )
    parser.add_argument("--temperature", type=float, default=0.2, help="0 for greedy answers")
    # Deviation from upstream: --top-p added (upstream's cli samples with temperature alone).
    parser.add_argument(
        "--top-p", "--top_p", dest="top_p", type=float, default=None, help="nucleus sampling (with temperature > 0)"
    )
    parser.add_argument("--max-new-tokens", type=int, default=512)
    parser.add_argument("--debug", action="store_true", help="print each prompt and reply after the reply")
    return parser


def chat_loop(session, settings: GenerationSettings, stdin: TextIO, stdout: TextIO, debug: bool = False) -> None:
    """Questions from ``stdin`` until an empty line or end of input; replies streamed to ``stdout``."""
    from llava.conversation import conv_templates
    from llava.serve.chat import ChatInputError

    user, assistant = conv_templates[session.conv_mode].roles
    while True:
        stdout.write(f"{user}: ")
        stdout.flush()
        line = stdin.readline()
        question = line.strip()
        if not question:
            stdout.write("\n" if not line else "")
            stdout.write("exit...\n")
            stdout.flush()
            return
        stdout.write(f"{assistant}: ")
        prompt = session.prompt(question)
        shown = ""
        try:
            for reply in session.stream(question, settings):
                if reply.startswith(shown):
                    stdout.write(reply[len(shown) :])
                    stdout.flush()
                    shown = reply
        except ChatInputError as error:
            stdout.write(f"\n[{error}]")
        stdout.write("\n")
        if debug:
            stdout.write(f"{ {'prompt': prompt, 'outputs': shown} }\n")
        stdout.flush()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from llava.serve.chat import ChatInputError, ChatSession, chat_model_from_args, open_image

    # Deviation from upstream: an unreadable picture exits 2 with a message (upstream: a stack
    # trace), and http(s) URLs are not fetched (no network at run time; download the picture).
    try:
        image = open_image(args.image_file)
    except ChatInputError as error:
        print(f"--image-file: {error}", file=sys.stderr)
        return 2
    chat_model, conv_mode = chat_model_from_args(args)
    session = ChatSession(
        chat_model,
        conv_mode,
        image,
    )
    settings = GenerationSettings(max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_p=args.top_p)
    chat_loop(session, settings, sys.stdin, sys.stdout, args.debug)
    return 0


if __name__ == "__main__":
    from llava.entry import run

    sys.exit(run(main, keep_debug=True))
