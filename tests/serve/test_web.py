"""The Gradio seam: a missing Gradio names the pip command; training never imports Gradio."""

from __future__ import annotations

import subprocess
import sys

import pytest

from llava.serve import web


def test_missing_gradio_fails_with_the_pip_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "gradio", None)  # makes ``import gradio`` raise ImportError
    with pytest.raises(ImportError, match=r'pip install -e "\.\[serve\]"'):
        web.import_gradio()


def test_analytics_are_off_once_gradio_is_imported(monkeypatch):
    pytest.importorskip("gradio")
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "True")
    gradio = web.import_gradio()
    import os

    assert os.environ["GRADIO_ANALYTICS_ENABLED"] == "False"
    theme = web.offline_theme(gradio)
    assert "Source Sans" not in theme.font and theme.font.startswith("ui-sans-serif")


def test_training_and_evaluation_never_import_gradio():
    code = (
        "import sys, llava.train.train, llava.train.evaluation, llava.eval.model_vqa, llava.serve.chat; "
        "print('gradio' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
