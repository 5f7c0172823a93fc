"""Serving a LLaVA checkpoint: the terminal chat (``cli``), the one-process web page
(``gradio_web_server``) and the evaluation browser of a run folder (``eval_browser``).

All chat goes through one engine, :mod:`llava.serve.chat`. Gradio is an optional
extra (``pip install -e ".[serve]"``); nothing outside this package imports it.
The manual is docs/SERVING.md.
"""
