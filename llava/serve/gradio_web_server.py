"""Chat with a LLaVA checkpoint in a web page, in one process (no controller, no model workers).

    python -m llava.serve.gradio_web_server --model-path checkpoints/llava-v1.5-7b-okvqa-qlora \
        --model-base liuhaotian/llava-v1.5-7b --load-4bit [--host 127.0.0.1 --port 7860]
    python -m llava.serve.gradio_web_server --model-path liuhaotian/llava-v1.5-7b

Upload a picture, ask, and watch the answer arrive token by token; follow-up
questions continue the conversation about the same picture. Temperature, top-p,
the maximum of new tokens and the conversation template (default: inferred
from the model's name, as upstream; pass ``--conv-mode`` for the one the run
trained with) are controls on the page. An unreadable picture or a prompt
longer than the model reads gets a message on the page. When ``--model-path``
is a run folder with ``eval/history.json`` the evaluation browser
(``llava.serve.eval_browser``) is a second tab (``--image-folder`` for its
pictures).

Deviation from upstream: upstream's page talks to a controller and model
workers (``--controller-url``); this one loads the model itself. See
docs/SERVING.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from llava.eval.generation import GenerationSettings
from llava.eval.model_vqa import add_model_arguments
from llava.flags import Parser
from llava.serve.chat import DEFAULT_MAX_MEGAPIXELS
from llava.serve.web import DEFAULT_MAX_FILE_SIZE

DEFAULT_TEMPERATURE = 0.2  # upstream's page defaults
DEFAULT_TOP_P = 0.7
DEFAULT_MAX_NEW_TOKENS = 512
EMPTY_REPLY = "(the model gave an empty answer)"


SESSION_TTL_S = 900  # a conversation's state (its picture) is freed this long after its last use


def build_app(chat_model, conv_mode: str, run=None, max_megapixels: float | None = None):
    """The page (``gradio.Blocks``): a chat tab, and the evaluation browser of ``run`` when given."""
    from llava.conversation import conv_templates
    from llava.serve.chat import DEFAULT_MAX_MEGAPIXELS, ChatInputError, ChatSession, open_image
    from llava.serve.eval_browser import build_browser
    from llava.serve.web import import_gradio

    gradio = import_gradio()

    def new_session(image=None) -> ChatSession:
        return ChatSession(chat_model, conv_mode, image)

    def on_picture(path, session: ChatSession):
        """A new picture starts a new conversation; an unreadable one is reported, not raised."""
        if path is None:
            session.reset(None)
            return session, None, [], ""
        try:
            image = open_image(path, DEFAULT_MAX_MEGAPIXELS if max_megapixels is None else max_megapixels)
        except ChatInputError as error:
            session.reset(None)
            return session, None, [], f"⚠️ {error}"
        width, height = image.size
        image = chat_model.fit_picture(image)  # the session keeps only what the model reads
        session.reset(image)
        return session, image, [], f"Picture loaded ({width}×{height}). Ask a question."

    def on_ask(question, history, session: ChatSession, template, temperature, top_p, max_new_tokens):
        question = (question or "").strip()
        history = list(history or [])
        if template != session.conv_mode:
            session.conv_mode = template
            session.turns = []
            history = []
        if session.image is None:
            yield "", history, session, "⚠️ Upload a picture first."
            return
        settings = GenerationSettings(
            max_new_tokens=int(max_new_tokens),
            temperature=float(temperature),
            top_p=float(top_p) if float(temperature) > 0 else None,
        )
        history.append({"role": "user", "content": question})
        history.append({"role": "assistant", "content": ""})
        try:
            for reply in session.stream(question, settings):
                history[-1] = {"role": "assistant", "content": reply}
                yield "", history, session, "Answering…"
        except ChatInputError as error:
            yield question, history[:-2], session, f"⚠️ {error}"
            return
        if not history[-1]["content"]:
            history[-1] = {"role": "assistant", "content": EMPTY_REPLY}
        yield "", history, session, "Done."

    def on_clear(session: ChatSession):
        session.reset(session.image)
        return session, [], ""

    with gradio.Blocks(title="LLaVA chat", analytics_enabled=False) as demo:
        # Freed after SESSION_TTL_S without use, and when the browser tab closes (demo.unload).
        session_state = gradio.State(new_session, time_to_live=SESSION_TTL_S)
        with gradio.Tab("Chat"):
            gradio.Markdown(f"### LLaVA: `{chat_model.model_name}`")
            with gradio.Row():
                with gradio.Column(scale=1):
                    upload = gradio.File(label="picture", file_types=["image"], type="filepath", elem_id="chat-upload")
                    preview = gradio.Image(
                        label="preview", type="pil", interactive=False, height=260, elem_id="chat-preview"
                    )
                    template = gradio.Dropdown(
                        sorted(conv_templates), value=conv_mode, label="conversation template", elem_id="chat-template"
                    )
                    temperature = gradio.Slider(
                        0.0,
                        1.0,
                        value=DEFAULT_TEMPERATURE,
                        step=0.05,
                        label="temperature (0: greedy)",
                        elem_id="chat-temperature",
                    )
                    top_p = gradio.Slider(
                        0.05, 1.0, value=DEFAULT_TOP_P, step=0.05, label="top-p", elem_id="chat-top-p"
                    )
                    max_new_tokens = gradio.Slider(
                        1,
                        1024,
                        value=DEFAULT_MAX_NEW_TOKENS,
                        step=1,
                        label="max new tokens",
                        elem_id="chat-max-new-tokens",
                    )
                with gradio.Column(scale=2):
                    chatbot = gradio.Chatbot(label="conversation", height=420, elem_id="chat-history")
                    status = gradio.Markdown("Upload a picture to start.", elem_id="chat-status")
                    question = gradio.Textbox(
                        label="question", placeholder="Ask about the picture and press Enter", elem_id="chat-question"
                    )
                    with gradio.Row():
                        send = gradio.Button("Send", variant="primary", elem_id="chat-send")
                        clear = gradio.Button("Clear conversation", elem_id="chat-clear")
        if run is not None:
            with gradio.Tab("Evaluation"):
                build_browser(gradio, run)

        upload.change(on_picture, [upload, session_state], [session_state, preview, chatbot, status])
        ask_inputs = [question, chatbot, session_state, template, temperature, top_p, max_new_tokens]
        ask_outputs = [question, chatbot, session_state, status]
        question.submit(on_ask, ask_inputs, ask_outputs)
        send.click(on_ask, ask_inputs, ask_outputs)
        clear.click(on_clear, [session_state], [session_state, chatbot, status])
    return demo


def build_parser() -> argparse.ArgumentParser:
    from llava.entry import HelpFormatter

    parser = Parser(
        formatter_class=HelpFormatter,
        prog="python -m llava.serve.gradio_web_server",
        description="Chat with a LLaVA checkpoint in a web page (one process).",
    )
    add_model_arguments(parser, model_path_required=True, exclusive_bits=True)
    parser.add_argument(
        "--conv-mode",
        type=str,
        default=None,
        help="conversation template (default: inferred from the model's name, as upstream)",
    )
    parser.add_argument(
        "--image-folder",
        type=str,
        default=None,
        help="for the evaluation tab: folder the run's validation image paths are relative to",
    )
    parser.add_argument(
        "--max-file-size",
        "--max_file_size",
        dest="max_file_size",
        default=DEFAULT_MAX_FILE_SIZE,
        help=f"largest upload, e.g. 20mb or 500kb (default {DEFAULT_MAX_FILE_SIZE})",
    )
    parser.add_argument(
        "--max-megapixels",
        "--max_megapixels",
        dest="max_megapixels",
        type=float,
        default=DEFAULT_MAX_MEGAPIXELS,
        help=f"largest picture, in millions of pixels, refused before decoding (default {DEFAULT_MAX_MEGAPIXELS:g})",
    )
    # Deviation from upstream: 127.0.0.1 by default (upstream 0.0.0.0): the page has no password.
    parser.add_argument("--host", type=str, default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7860)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from llava.serve.chat import chat_model_from_args
    from llava.serve.eval_browser import CSS, EVAL_FOLDER, HISTORY_FILE, load_run
    from llava.serve.web import import_gradio, launch

    import_gradio()  # fail on a missing Gradio before loading a model
    run = None
    if (Path(args.model_path) / EVAL_FOLDER / HISTORY_FILE).is_file():
        run = load_run(args.model_path, args.image_folder)
    chat_model, conv_mode = chat_model_from_args(args)
    launch(
        build_app(chat_model, conv_mode, run, args.max_megapixels),
        args.host,
        args.port,
        css=CSS,
        max_file_size=args.max_file_size,
    )
    return 0


if __name__ == "__main__":
    from llava.entry import run

    sys.exit(run(main))
