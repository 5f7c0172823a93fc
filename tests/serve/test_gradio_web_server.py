"""The one-process chat page: flags, the evaluation tab, and a real chat in headless Chromium."""

from __future__ import annotations

import importlib.util

import pytest
from browser import artifacts_dir, chromium_page, served, skip_reason
from eval_run import write_eval_run

from llava.serve.gradio_web_server import build_parser

BROWSER_SKIP = skip_reason()
NO_GRADIO = importlib.util.find_spec("gradio") is None


def test_flags_and_defaults():
    args = build_parser().parse_args(["--model-path", "run"])
    assert (args.host, args.port, args.model_base, args.conv_mode, args.device) == (
        "127.0.0.1",
        7860,
        None,
        None,
        "cuda",
    )
    assert build_parser().parse_args(["--model-path", "run", "--load-4bit"]).load_4bit
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--model-path", "run", "--load-4bit", "--load-8bit"])


@pytest.mark.skipif(NO_GRADIO, reason="needs gradio: pip install -e '.[serve]'")
def test_a_run_folder_adds_the_evaluation_tab(tmp_path, tiny_llava_dir):
    from llava.serve.chat import load_chat_model
    from llava.serve.eval_browser import load_run
    from llava.serve.gradio_web_server import build_app

    run_dir, images = write_eval_run(tmp_path / "run", tmp_path / "data")
    chat_model = load_chat_model(str(tiny_llava_dir), device="cpu")

    def tabs(demo):
        return [block.label for block in demo.blocks.values() if type(block).__name__ == "Tab"]

    assert tabs(build_app(chat_model, "vicuna_v1")) == ["Chat"]
    assert tabs(build_app(chat_model, "vicuna_v1", load_run(run_dir, images))) == ["Chat", "Evaluation"]


@pytest.fixture(scope="module")
def server_url(tiny_llava_dir, tmp_path_factory):
    if BROWSER_SKIP:
        pytest.skip(BROWSER_SKIP)
    log = tmp_path_factory.mktemp("chat-server-log") / "server.log"
    with served(
        "llava.serve.gradio_web_server",
        ["--model-path", str(tiny_llava_dir), "--device", "cpu", "--conv-mode", "vicuna_v1"],
        log,
    ) as url:
        yield url


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    from llava.data.synthetic import draw

    folder = tmp_path_factory.mktemp("chat-pictures")
    draw("red", "circle", size=(120, 90)).save(folder / "red.png")
    (folder / "holiday.jpg").write_bytes(b"this is not a picture")
    return folder


def test_upload_ask_and_an_answer_streams_in_then_an_over_long_prompt_gets_a_message(server_url, pictures):
    shots = artifacts_dir()
    with chromium_page() as page:
        page.goto(server_url)
        page.locator("#chat-upload input[type=file]").set_input_files(str(pictures / "red.png"))
        page.wait_for_selector("#chat-status:has-text('Picture loaded (120×90)')")
        page.wait_for_selector("#chat-preview img")
        question = page.locator("#chat-question textarea")
        question.fill("What colour is the shape?")
        question.press("Enter")
        page.wait_for_selector("#chat-status:has-text('Done.')", timeout=60_000)
        history = page.locator("#chat-history")
        assert "What colour is the shape?" in history.inner_text()
        answer = history.locator(".bot").last.inner_text().strip()
        assert answer, "an answer appears"
        page.screenshot(path=str(shots / "chat_answer.png"))

        question.fill("word " * 3000)
        page.locator("#chat-send").click()
        page.wait_for_selector("#chat-status:has-text('The prompt is too long')", timeout=60_000)
        status = page.locator("#chat-status").inner_text()
        assert "at most 512" in status and "Traceback" not in page.content()  # the tiny tokenizer's limit
        assert history.locator(".bot").count() == 1, "the refused question joins no history"
        page.screenshot(path=str(shots / "chat_too_long.png"))


def test_an_unreadable_picture_gets_a_message_not_a_stack_trace(server_url, pictures):
    with chromium_page() as page:
        page.goto(server_url)
        page.locator("#chat-upload input[type=file]").set_input_files(str(pictures / "holiday.jpg"))
        page.wait_for_selector("#chat-status:has-text('Cannot read holiday.jpg as a picture')")
        page.locator("#chat-question textarea").fill("What is it?")
        page.locator("#chat-send").click()
        page.wait_for_selector("#chat-status:has-text('Upload a picture first')")
        page.screenshot(path=str(artifacts_dir() / "chat_unreadable_picture.png"))


def _upload(url: str, size: int) -> int:
    """POST a file of ``size`` bytes to Gradio's upload route, as curl -F would; the HTTP status."""
    import urllib.error
    import urllib.request

    boundary = "llava-test-boundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="big.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + b"\0" * size
        + f"\r\n--{boundary}--\r\n".encode()
    )
    request = urllib.request.Request(
        url + "gradio_api/upload", data=body, headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except (urllib.error.URLError, ConnectionError):  # the server cut the upload off
        return 0


def _stored(url) -> int:
    return (
        sum(path.stat().st_size for path in url.temp_dir.rglob("*") if path.is_file()) if url.temp_dir.exists() else 0
    )


def test_uploads_are_bounded_and_huge_pictures_refused_before_decoding(server_url, tmp_path):
    """A 25 MB upload is refused (20 MB default) and not kept; five 12,000 x 12,000 pictures (a
    small PNG each) are refused from their headers and the server's memory stays where it was."""
    from browser import rss_bytes
    from PIL import Image

    assert _upload(server_url, 25 << 20) != 200 and _stored(server_url) < (1 << 20)
    assert _upload(server_url, 1 << 20) == 200  # under the limit: accepted
    huge = tmp_path / "huge.png"
    Image.new("1", (12_000, 12_000)).save(huge)
    assert huge.stat().st_size < (1 << 20)
    before = rss_bytes(server_url.pid)
    with chromium_page() as page:
        for _ in range(5):
            page.goto(server_url)
            page.locator("#chat-upload input[type=file]").set_input_files(str(huge))
            page.wait_for_selector("#chat-status:has-text('megapixel limit')", timeout=60_000)
        assert "12000×12000 (144 megapixels)" in page.locator("#chat-status").inner_text()
    assert rss_bytes(server_url.pid) - before < 300 << 20


def test_a_large_picture_is_kept_at_the_size_the_tower_reads(tiny_llava_dir):
    from PIL import Image

    from llava.serve.chat import load_chat_model

    chat_model = load_chat_model(str(tiny_llava_dir), device="cpu")
    side = chat_model.image_processor.crop_size["height"]
    fitted = chat_model.fit_picture(Image.new("RGB", (40 * side, 20 * side)))
    assert fitted.size == (side, side // 2)  # pad: the longer side, aspect kept
    small = Image.new("RGB", (side // 2, side // 3))
    assert chat_model.fit_picture(small) is small


@pytest.mark.skipif(BROWSER_SKIP is not None, reason=BROWSER_SKIP or "")
def test_the_evaluation_browser_takes_no_upload(tmp_path):
    run_dir, images = write_eval_run(tmp_path / "run", tmp_path / "data")
    with served("llava.serve.eval_browser", [str(run_dir), "--image-folder", str(images)], tmp_path / "log") as url:
        assert _upload(url, 10) != 200 and _stored(url) == 0
