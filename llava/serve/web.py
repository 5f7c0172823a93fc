"""The one seam to Gradio: import it offline-safe, an offline theme, and launching on a host and port.

Gradio is the optional ``serve`` extra; :func:`import_gradio` fails with the
pip command when it is missing. Analytics and version checks are turned off
before Gradio is imported, the theme uses the system's fonts (no Google Fonts,
no CDN) and server-side rendering (a Node process) is off, so the pages work on
a machine without network.
"""

from __future__ import annotations

import os
from typing import Any

INSTALL_HINT = 'pip install -e ".[serve]"'


def import_gradio():
    """The ``gradio`` module, with telemetry off; ``ImportError`` with the pip command when missing."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ.setdefault("GRADIO_SSR_MODE", "False")
    try:
        import gradio
    except ImportError as error:
        raise ImportError(f"The web pages need Gradio: {INSTALL_HINT} (or pip install gradio)") from error
    return gradio


SYSTEM_FONTS = ("ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "Helvetica", "Arial", "sans-serif")
SYSTEM_MONO_FONTS = ("ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace")


def offline_theme(gradio) -> Any:
    """Gradio's default look with system fonts only (nothing fetched from the web)."""
    return gradio.themes.Default(font=list(SYSTEM_FONTS), font_mono=list(SYSTEM_MONO_FONTS))


DEFAULT_MAX_FILE_SIZE = "20mb"
# Uploaded files older than this are deleted (checked every minute): nothing piles up in Gradio's temp folder.
UPLOAD_MAX_AGE_S = 600


def launch(
    demo, host: str, port: int, css: str | None = None, block: bool = True, max_file_size: str | int | None = 0
) -> None:
    """Serve ``demo`` on ``host:port`` (one request at a time per event), offline-safe.

    ``max_file_size`` bounds every upload (Gradio's ``/upload`` route serves every page, with or
    without an upload box): 0, the default, refuses any non-empty upload.
    """
    gradio = import_gradio()
    demo.queue(default_concurrency_limit=1)
    demo.delete_cache = (60, UPLOAD_MAX_AGE_S)
    # Gradio's own banner suggests share=True (a public tunnel): print the address ourselves instead.
    print(f"Serving on http://{host}:{port} (Ctrl+C stops it)", flush=True)
    demo.launch(
        max_file_size=max_file_size,
        server_name=host,
        server_port=port,
        share=False,
        ssr_mode=False,
        theme=offline_theme(gradio),
        css=css,
        show_error=False,
        footer_links=[],
        prevent_thread_lock=not block,
        quiet=True,
    )
