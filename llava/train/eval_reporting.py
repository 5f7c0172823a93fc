"""What each evaluation leaves behind: ``output_dir/eval/{tag}.jsonl``, ``history.json``, ``curves.png``.

Written atomically on rank 0 by ``llava.train.evaluation``; read by the evaluation
browser (``llava.serve.eval_browser``). docs/EVALUATION.md describes the files.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

from llava.utils import atomic_path, finite_or_none, write_atomic

__all__ = [
    "CURVES_FILE",
    "EVAL_FOLDER",
    "HISTORY_FILE",
    "answers_summary",
    "epoch_tag",
    "plot_curves",
    "read_history",
    "write_evaluation",
]

EVAL_FOLDER = "eval"
HISTORY_FILE = "history.json"
CURVES_FILE = "curves.png"


def epoch_tag(epoch: float | None, global_step: int) -> str:
    """``epoch_{k}`` at a whole epoch (``epoch_0`` before training), else ``step_{global_step}``."""
    epoch = 0.0 if epoch is None else float(epoch)
    if abs(epoch - round(epoch)) < 1e-6:
        return f"epoch_{round(epoch)}"
    return f"step_{global_step}"


def read_history(folder: str | os.PathLike) -> list[dict]:
    """The evaluations recorded in ``folder/history.json`` (empty when there is none)."""
    path = Path(folder) / HISTORY_FILE
    if not path.exists():
        return []
    return json.loads(path.read_text(encoding="utf-8"))


def plot_curves(history: Sequence[Mapping], path: str | os.PathLike) -> None:
    """Eval loss (left) and VQA accuracy / exact match in percent (right) per epoch, as a PNG.

    Uses matplotlib's object API with the Agg canvas: no display and no change to the
    process-wide backend. Written atomically.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 3.8), dpi=100)
    FigureCanvasAgg(figure)
    loss_axes, accuracy_axes = figure.subplots(1, 2)
    for axes, keys, ylabel in (
        (loss_axes, (("eval_loss", "eval loss", "o"),), "loss"),
        (
            accuracy_axes,
            (
                ("vqa_accuracy", "VQA accuracy", "o"),
                ("exact_match", "exact match", "s"),
                ("choice_accuracy", "choice accuracy", "^"),
            ),
            "percent",
        ),
    ):
        for key, label, marker in keys:
            points = [(entry["epoch"], entry[key]) for entry in history if entry.get(key) is not None]
            if points:
                axes.plot(*zip(*points, strict=True), marker=marker, label=label)
        axes.set_xlabel("epoch")
        axes.set_ylabel(ylabel)
        axes.grid(alpha=0.3)
        if axes.lines:
            axes.legend()
    if accuracy_axes.lines:
        accuracy_axes.set_ylim(bottom=0)
    loss_axes.set_title("validation loss")
    accuracy_axes.set_title("validation accuracy (generation subset)")
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png")


def write_evaluation(
    output_dir: str | os.PathLike,
    entry: dict,
    records: Sequence[Mapping],
) -> Path:
    """``eval/{tag}.jsonl`` (the ``records``), ``eval/history.json`` and ``eval/curves.png``.

    ``entry`` is this evaluation's history entry (``tag``, ``epoch``, ``global_step``,
    scores); its ``predictions`` names the JSONL file (None without records).
    ``history.json`` keeps the evaluations of earlier steps; those at this step or
    later (left by a run this one resumed from an earlier checkpoint) are replaced.
    """
    folder = Path(output_dir) / EVAL_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    entry = {**entry, "predictions": f"{entry['tag']}.jsonl" if records else None}
    if records:
        lines = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
        write_atomic(folder / entry["predictions"], lines)
    history = [old for old in read_history(folder) if old["global_step"] < entry["global_step"]]
    history.append(entry)
    # A diverged evaluation has NaN metrics: written as null, so the file stays JSON.
    write_atomic(folder / HISTORY_FILE, json.dumps(finite_or_none(history), indent=1, allow_nan=False) + "\n")
    plot_curves(history, folder / CURVES_FILE)
    return folder


def answers_summary(answers: Sequence[str]) -> str:
    """``race x6, motocross x2, ride x2``: the distinct answers with their counts."""
    return ", ".join(f"{answer} x{count}" if count > 1 else answer for answer, count in Counter(answers).most_common())
