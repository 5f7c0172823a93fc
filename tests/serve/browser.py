"""Test helper: serve a page in a subprocess on 127.0.0.1 and drive it with headless Chromium.

The browser is Debian's ``chromium`` (``/usr/bin/chromium``, or ``$CHROMIUM``)
driven by Playwright for Python; ``playwright install`` is never used.
:func:`skip_reason` says why browser tests cannot run here (one line), so
``make test`` skips them on a machine without a browser. Screenshots go to
``$LLAVA_TEST_ARTIFACTS`` (default ``test-artifacts/serve`` in the repository).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium_path() -> str | None:
    explicit = os.environ.get("CHROMIUM")
    if explicit:
        return explicit if os.path.exists(explicit) else None
    for candidate in ("/usr/bin/chromium", "/usr/bin/chromium-browser"):
        if os.path.exists(candidate):
            return candidate
    return shutil.which("chromium")


def skip_reason() -> str | None:
    """Why the browser tests cannot run here, or None."""
    missing = [name for name in ("gradio", "playwright") if importlib.util.find_spec(name) is None]
    if missing:
        return f"browser tests need {' and '.join(missing)}: pip install -e '.[serve,browser]'"
    if chromium_path() is None:
        return "browser tests need Chromium: apt-get install -y chromium (or set $CHROMIUM)"
    return None


def artifacts_dir() -> Path:
    folder = Path(os.environ.get("LLAVA_TEST_ARTIFACTS", ROOT / "test-artifacts" / "serve"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ServedURL(str):
    """The page's URL; ``pid`` is the server process (for memory checks), ``temp_dir`` its Gradio uploads."""

    pid: int
    temp_dir: Path


def rss_bytes(pid: int) -> int:
    """Resident memory of process ``pid`` (Linux)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for process {pid}")


@contextmanager
def served(module: str, arguments: list[str], log_path: Path, timeout: float = 180.0) -> Iterator[ServedURL]:
    """Run ``python -m module arguments --host 127.0.0.1 --port P`` until the port answers; yields the URL."""
    port = free_port()
    command = [sys.executable, "-m", module, *arguments, "--host", "127.0.0.1", "--port", str(port)]
    env = dict(
        os.environ,
        PYTHONPATH=str(ROOT),
        OMP_NUM_THREADS="1",
        HF_HUB_OFFLINE="1",
        GRADIO_ANALYTICS_ENABLED="False",
        TOKENIZERS_PARALLELISM="false",
        GRADIO_TEMP_DIR=str(log_path.parent / "gradio-uploads"),
    )
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + timeout
            while True:
                if process.poll() is not None:
                    raise AssertionError(f"{module} exited with {process.returncode}:\n{log_path.read_text()[-4000:]}")
                with socket.socket() as probe:
                    if probe.connect_ex(("127.0.0.1", port)) == 0:
                        break
                if time.monotonic() > deadline:
                    raise AssertionError(f"{module} did not listen within {timeout} s:\n{log_path.read_text()[-4000:]}")
                time.sleep(0.3)
            url = ServedURL(f"http://127.0.0.1:{port}/")
            url.pid, url.temp_dir = process.pid, log_path.parent / "gradio-uploads"
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextmanager
def chromium_page(width: int = 1400, height: int = 1000):
    """A Playwright page in headless Chromium with the network-quiet flags.

    On leaving, asserts the page asked for nothing beyond 127.0.0.1 (no fonts,
    CDN scripts or analytics): the pages must work offline.
    """
    from playwright.sync_api import sync_playwright

    elsewhere: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.on("request", lambda request: None if _local(request.url) else elsewhere.append(request.url))
            yield page
        finally:
            browser.close()
    assert not elsewhere, f"the page fetched from the network: {elsewhere[:5]}"


def _local(url: str) -> bool:
    from urllib.parse import urlparse

    parsed = urlparse(url)
    return parsed.scheme in ("data", "blob", "about") or parsed.hostname in ("127.0.0.1", "localhost")
