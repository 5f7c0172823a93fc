"""Browse a run's evaluations in a web page: curves per epoch and each epoch's answers with their pictures.

    python -m llava.serve.eval_browser checkpoints/llava-v1.5-7b-okvqa-qlora [--host 127.0.0.1 --port 7861]

Reads only what evaluation between epochs already wrote under ``RUN_DIR/eval``:
``history.json`` (one entry per evaluation) and the ``epoch_k.jsonl`` /
``step_n.jsonl`` predictions it names, plus the pictures those name (relative
to the validation image folder the run recorded in ``eval/run.json``, or to
``--image-folder`` for a run copied to another machine). It never loads a
model. The page shows the eval loss, VQA accuracy and per-category accuracy
per epoch, and the predictions of any epoch as a table (thumbnail, question,
prediction, the ten answers, score) with filters for category, right / wrong,
and what changed against another epoch. The chat page
(``llava.serve.gradio_web_server``) shows the same browser as a tab.
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import json
import os
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from llava.flags import Parser
from llava.images import ImageReadError, open_image
from llava.utils import jsonl_records, plural

EVAL_FOLDER = "eval"  # llava.train.evaluation.EVAL_FOLDER (not imported: serving stays torch-free here)
HISTORY_FILE = "history.json"
REQUIRED_KEYS = ("question_id", "question", "prediction", "answers", "vqa_accuracy")
THUMBNAIL_PIXELS = 96
PAGE_SIZE = 100

ALL = "all"
OUTCOMES = (ALL, "right", "partly right", "wrong")
CHANGES = (ALL, "changed", "improved", "got worse", "unchanged")
NO_COMPARISON = "(none)"


@dataclass(frozen=True)
class Evaluation:
    """One evaluation of the run: its ``history.json`` entry and its predictions (may be empty)."""

    tag: str
    epoch: float
    global_step: int
    eval_loss: float | None
    vqa_accuracy: float | None
    exact_match: float | None
    per_category: dict[str, float]
    records: list[dict]


@dataclass
class RunEvaluations:
    """What a run's ``eval`` folder holds, in evaluation order."""

    run_dir: Path
    evaluations: list[Evaluation]
    image_folder: Path | None = None
    _thumbnails: dict[str, str | None] = field(default_factory=dict, repr=False)

    @property
    def tags_with_predictions(self) -> list[str]:
        return [evaluation.tag for evaluation in self.evaluations if evaluation.records]

    def evaluation(self, tag: str) -> Evaluation:
        for evaluation in self.evaluations:
            if evaluation.tag == tag:
                return evaluation
        raise KeyError(f"{self.run_dir}: no evaluation {tag!r}; there are {[e.tag for e in self.evaluations]}")

    def categories(self) -> list[str]:
        found = {r.get("question_type") for e in self.evaluations for r in e.records}
        return sorted(category for category in found if category)

    def image_path(self, relative: str) -> Path | None:
        """The picture's path, or None when it lies outside the image folder (never read, never probed)."""
        base = (self.image_folder if self.image_folder is not None else Path.cwd()).resolve()
        path = (base / str(relative)).resolve()
        return path if path.is_relative_to(base) else None

    def outside(self, relative: str | None) -> bool:
        """Whether a record's picture points outside the image folder (shown as such, not read)."""
        return bool(relative) and self.image_path(str(relative)) is None

    def thumbnail(self, relative: str | None) -> str | None:
        """A small JPEG of the picture as a ``data:`` URI (cached), or None when it cannot be read."""
        if not relative:
            return None
        if relative not in self._thumbnails:
            path = self.image_path(relative)
            if path is None:
                self._thumbnails[relative] = None
                return None
            try:
                # JPEG: decode at 1/2..1/8 scale
                small = open_image(path, draft=(2 * THUMBNAIL_PIXELS, 2 * THUMBNAIL_PIXELS))
            except ImageReadError:  # missing or unreadable: the table says so in the cell
                self._thumbnails[relative] = None
            else:
                small.thumbnail((THUMBNAIL_PIXELS, THUMBNAIL_PIXELS))
                buffer = io.BytesIO()
                small.save(buffer, format="JPEG", quality=85)
                self._thumbnails[relative] = "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()
        return self._thumbnails[relative]


def _read_predictions(path: Path, problems: list[str]) -> list[dict]:
    records = []
    for line_number, record in jsonl_records(path, problems):
        missing = [key for key in REQUIRED_KEYS if key not in record]
        if missing:
            problems.append(f"{path}:{line_number}: record lacks {missing}")
            continue
        records.append(record)
    return records


NUMBER_KEYS = ("eval_loss", "vqa_accuracy", "exact_match")


def _number_or_none(value) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def load_run(run_dir: str | os.PathLike, image_folder: str | os.PathLike | None = None) -> RunEvaluations:
    """Read ``run_dir/eval``; ``ValueError`` listing every problem (file and line) at once."""
    run_dir = Path(run_dir)
    folder = run_dir / EVAL_FOLDER
    history_path = folder / HISTORY_FILE
    if not history_path.is_file():
        raise FileNotFoundError(
            f"{history_path}: not found. Pass the output_dir of a run trained with evaluation between "
            "epochs (--eval_strategy epoch); it writes eval/history.json and eval/epoch_k.jsonl."
        )
    try:
        history = json.loads(history_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{history_path}: not valid JSON ({error.msg}, line {error.lineno})") from error
    except UnicodeDecodeError as error:
        raise ValueError(f"{history_path}: not UTF-8 text (byte {error.start})") from None
    except RecursionError:
        raise ValueError(f"{history_path}: not valid JSON (nested too deeply)") from None
    if not isinstance(history, list):
        raise ValueError(f"{history_path}: expected a list of evaluations, found {type(history).__name__}")
    problems: list[str] = []
    evaluations = []
    for index, entry in enumerate(history):
        if not isinstance(entry, dict):
            problems.append(f"{history_path}: entry {index} is not an object")
            continue
        missing = [key for key in ("tag", "epoch", "global_step") if key not in entry]
        if missing:
            problems.append(f"{history_path}: entry {index} lacks {missing}")
            continue
        wrong = [key for key in NUMBER_KEYS if not _number_or_none(entry.get(key))]
        per_category = entry.get("per_category") or {}
        if not isinstance(per_category, dict) or not all(map(_number_or_none, per_category.values())):
            wrong.append("per_category")
        if entry["epoch"] is None or entry["global_step"] is None:
            wrong += ["epoch", "global_step"]
        elif not _number_or_none(entry["epoch"]) or not _number_or_none(entry["global_step"]):
            wrong += ["epoch", "global_step"]
        if wrong:
            problems.append(f"{history_path}: entry {index}: {', '.join(wrong)} must be numbers (or null)")
            continue
        records: list[dict] = []
        if entry.get("predictions"):
            path = (folder / str(entry["predictions"])).resolve()
            if not path.is_relative_to(folder.resolve()):  # never read (or probe) a file outside the run
                problems.append(f"{history_path}: entry {index} names a predictions file outside the run; not read")
            elif path.is_file():
                records = _read_predictions(path, problems)
            else:
                problems.append(f"{history_path}: entry {index} ({entry['tag']}) names {path}, which is missing")
        evaluations.append(
            Evaluation(
                tag=str(entry["tag"]),
                epoch=float(entry["epoch"]),
                global_step=int(entry["global_step"]),
                eval_loss=entry.get("eval_loss"),
                vqa_accuracy=entry.get("vqa_accuracy"),
                exact_match=entry.get("exact_match"),
                per_category={str(name): value for name, value in per_category.items()},
                records=records,
            )
        )
    if problems:
        raise ValueError(
            f"{run_dir}: {plural(len(problems), 'problem')} in the evaluation files:\n  " + "\n  ".join(problems)
        )
    if image_folder is None:  # the folder the run evaluated with (eval/run.json); --image-folder overrides
        from llava.run_record import read_record

        record = read_record(run_dir) or {}
        recorded = record.get("validation_image_folder") or record.get("image_folder")
        image_folder = recorded if isinstance(recorded, str) else None
    return RunEvaluations(run_dir, evaluations, None if image_folder is None else Path(image_folder))


# ------------------------------------------------------------------------------------ filtering


def outcome(score: float) -> str:
    """``right`` (VQA accuracy 1), ``wrong`` (0) or ``partly right`` (fewer than 3 annotators agree)."""
    if score >= 1.0:
        return "right"
    if score <= 0.0:
        return "wrong"
    return "partly right"


@dataclass(frozen=True)
class Row:
    """One question of the shown epoch, with its record in the compared epoch (if any)."""

    record: dict
    compared: dict | None = None


def select_rows(
    run: RunEvaluations,
    tag: str,
    category: str = ALL,
    result: str = ALL,
    compare_tag: str | None = None,
    change: str = ALL,
) -> list[Row]:
    """The questions of evaluation ``tag`` that pass the filters, in file order.

    ``change`` compares with ``compare_tag`` by question id: ``changed`` (another
    prediction), ``improved`` / ``got worse`` (higher / lower score), ``unchanged``.
    """
    if result not in OUTCOMES:
        raise ValueError(f"result filter {result!r}: one of {OUTCOMES}")
    if change not in CHANGES:
        raise ValueError(f"change filter {change!r}: one of {CHANGES}")
    compared_records: dict = {}
    if compare_tag:
        compared_records = {r["question_id"]: r for r in run.evaluation(compare_tag).records}
    rows = []
    for record in run.evaluation(tag).records:
        if category != ALL and record.get("question_type") != category:
            continue
        if result != ALL and outcome(record["vqa_accuracy"]) != result:
            continue
        other = compared_records.get(record["question_id"])
        if change != ALL:
            if other is None:
                continue
            delta = record["vqa_accuracy"] - other["vqa_accuracy"]
            differs = record["prediction"] != other["prediction"]
            keep = {"changed": differs, "improved": delta > 0, "got worse": delta < 0, "unchanged": not differs}
            if not keep[change]:
                continue
        rows.append(Row(record, other))
    return rows


# ------------------------------------------------------------------------------------ rendering


def answers_summary(answers: Sequence[str]) -> str:
    """``"dog ×6, puppy ×3, pet"``: the annotators' answers, most given first."""
    counts = Counter(answers)
    return ", ".join(text if count == 1 else f"{text} ×{count}" for text, count in counts.most_common())


def _score_cell(score: float) -> str:
    return f'<span class="score {outcome(score).replace(" ", "-")}">{score:.2f}</span>'


def render_table(run: RunEvaluations, rows: Sequence[Row], compare_tag: str | None = None) -> str:
    """The rows as an HTML table; every text escaped, pictures inline as thumbnails."""
    header = ["picture", "question", "prediction", "answers", "score"]
    if compare_tag:
        header[3:3] = [f"prediction at {compare_tag}", f"score at {compare_tag}"]
    parts = ['<table class="eval-table"><thead><tr>']
    parts += [f"<th>{html.escape(name)}</th>" for name in header]
    parts.append("</tr></thead><tbody>")
    for row in rows:
        record = row.record
        thumbnail = run.thumbnail(record.get("image"))
        if thumbnail:
            picture = f'<img class="thumb" src="{thumbnail}" alt="{html.escape(str(record["image"]))}">'
        elif run.outside(record.get("image")):
            picture = '<span class="missing">outside the run</span>'
        elif record.get("image"):
            picture = f'<span class="missing">missing: {html.escape(str(record["image"]))}</span>'
        else:
            picture = '<span class="missing">no picture</span>'
        category = record.get("question_type")
        question = html.escape(str(record["question"]))
        meta = html.escape(f"#{record['question_id']}" + (f" · {category}" if category else ""))
        cells = [
            picture,
            f'{question}<div class="meta">{meta}</div>',
            html.escape(str(record["prediction"])),
        ]
        if compare_tag:
            other = row.compared
            cells += (
                ["—", "—"]
                if other is None
                else [html.escape(str(other["prediction"])), _score_cell(other["vqa_accuracy"])]
            )
        cells += [html.escape(answers_summary(record["answers"])), _score_cell(record["vqa_accuracy"])]
        parts.append(f'<tr data-question-id="{html.escape(str(record["question_id"]))}">')
        parts += [f"<td>{cell}</td>" for cell in cells]
        parts.append("</tr>")
    parts.append("</tbody></table>")
    return "".join(parts)


def summary_markdown(run: RunEvaluations) -> str:
    """One line per evaluation: epoch, step, eval loss, VQA accuracy, exact match, questions."""

    def number(value: float | None, digits: int) -> str:
        return "—" if value is None else f"{value:.{digits}f}"

    lines = [
        "| evaluation | epoch | step | eval loss | VQA accuracy | exact match | questions |",
        "|---|---|---|---|---|---|---|",
    ]
    for e in run.evaluations:
        lines.append(
            f"| {e.tag} | {e.epoch:g} | {e.global_step} | {number(e.eval_loss, 4)} | "
            f"{number(e.vqa_accuracy, 2)} | {number(e.exact_match, 2)} | {len(e.records)} |"
        )
    return "\n".join(lines)


def curves_figure(run: RunEvaluations):
    """A matplotlib figure: eval loss, VQA accuracy and exact match, VQA accuracy per category."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(13, 3.6), dpi=90)
    FigureCanvasAgg(figure)
    loss_axes, accuracy_axes, category_axes = figure.subplots(1, 3)

    def plot(axes, values, label, marker="o"):
        points = [(e.epoch, v) for e, v in zip(run.evaluations, values, strict=True) if v is not None]
        if points:  # "$" in a category name would be parsed as mathtext: escape it, show it as written
            axes.plot(*zip(*points, strict=True), marker=marker, label=str(label).replace("$", r"\$"))

    plot(loss_axes, [e.eval_loss for e in run.evaluations], "eval loss")
    plot(accuracy_axes, [e.vqa_accuracy for e in run.evaluations], "VQA accuracy")
    plot(accuracy_axes, [e.exact_match for e in run.evaluations], "exact match", "s")
    for category in sorted({c for e in run.evaluations for c in e.per_category}):
        plot(category_axes, [e.per_category.get(category) for e in run.evaluations], category, ".")
    for axes, title, ylabel in (
        (loss_axes, "validation loss", "loss"),
        (accuracy_axes, "accuracy", "percent"),
        (category_axes, "VQA accuracy per category", "percent"),
    ):
        axes.set_title(title)
        axes.set_xlabel("epoch")
        axes.set_ylabel(ylabel)
        axes.grid(alpha=0.3)
        if axes.lines:
            axes.legend(fontsize=7)
    figure.tight_layout()
    return figure


# ------------------------------------------------------------------------------------ the page

CSS = """
.eval-table { border-collapse: collapse; width: 100%; font-size: 0.9em; }
.eval-table th, .eval-table td {
  border-bottom: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: top;
}
.eval-table img.thumb { max-width: 96px; max-height: 96px; display: block; }
.eval-table .meta { color: #888; font-size: 0.85em; }
.eval-table .missing { color: #b00; font-size: 0.85em; }
.score.right { color: #087f23; font-weight: 600; }
.score.partly-right { color: #b26a00; font-weight: 600; }
.score.wrong { color: #b00020; font-weight: 600; }
"""


def build_browser(gradio, run: RunEvaluations) -> None:
    """Add the browser's components to the current Gradio Blocks context (a page or a tab)."""
    tags = run.tags_with_predictions
    gradio.Markdown(f"### Evaluations of `{run.run_dir}`")
    gradio.Markdown(summary_markdown(run))
    gradio.Plot(curves_figure(run), label="curves", format="png")
    if not tags:
        gradio.Markdown("This run has no predictions yet (no `eval/epoch_k.jsonl`).")
        return
    with gradio.Row():
        epoch = gradio.Dropdown(tags, value=tags[-1], label="epoch", elem_id="eval-epoch")
        category = gradio.Dropdown([ALL, *run.categories()], value=ALL, label="category", elem_id="eval-category")
        result = gradio.Dropdown(list(OUTCOMES), value=ALL, label="result", elem_id="eval-result")
        compare = gradio.Dropdown(
            [NO_COMPARISON, *tags], value=NO_COMPARISON, label="compare with epoch", elem_id="eval-compare"
        )
        change = gradio.Dropdown(list(CHANGES), value=ALL, label="change against it", elem_id="eval-change")
        page = gradio.Number(value=1, minimum=1, precision=0, label=f"page ({PAGE_SIZE} rows)", elem_id="eval-page")
    status = gradio.Markdown(elem_id="eval-status")
    table = gradio.HTML(elem_id="eval-table")

    def show(tag, category_value, result_value, compare_value, change_value, page_value):
        compare_tag = None if compare_value in (None, NO_COMPARISON) else compare_value
        if change_value != ALL and compare_tag is None:
            return "Choose an epoch to compare with to filter by change.", ""
        rows = select_rows(run, tag, category_value, result_value, compare_tag, change_value)
        total = len(run.evaluation(tag).records)
        pages = max(1, -(-len(rows) // PAGE_SIZE))
        index = min(max(int(page_value or 1), 1), pages) - 1
        shown = rows[index * PAGE_SIZE : (index + 1) * PAGE_SIZE]
        first = index * PAGE_SIZE + 1 if shown else 0
        message = (
            f"**{len(rows)} of {total} questions** of {tag} match; showing {first}–"
            f"{index * PAGE_SIZE + len(shown)} (page {index + 1} of {pages})."
        )
        unreadable = sum(
            1
            for row in shown
            if row.record.get("image")
            and not run.outside(row.record["image"])
            and run.thumbnail(row.record["image"]) is None
        )
        if unreadable:
            where = run.image_folder if run.image_folder is not None else Path.cwd()
            message += (
                f" {unreadable} picture(s) not found under `{where}`: pass --image-folder "
                "(the run's validation image folder)."
            )
        return message, render_table(run, shown, compare_tag)

    inputs = [epoch, category, result, compare, change, page]
    for component in inputs:
        component.change(show, inputs, [status, table])
    status.value, table.value = show(tags[-1], ALL, ALL, NO_COMPARISON, ALL, 1)


def build_app(run: RunEvaluations):
    """The browser as a page of its own (``gradio.Blocks``)."""
    from llava.serve.web import import_gradio

    gradio = import_gradio()
    with gradio.Blocks(title=f"LLaVA evaluations: {run.run_dir.name}", analytics_enabled=False) as demo:
        build_browser(gradio, run)
    return demo


def build_parser() -> argparse.ArgumentParser:
    from llava.entry import HelpFormatter

    parser = Parser(
        formatter_class=HelpFormatter,
        prog="python -m llava.serve.eval_browser",
        description="Browse a run's evaluations (curves, predictions with pictures).",
    )
    parser.add_argument("run_dir", help="a run's output_dir (holds eval/history.json)")
    parser.add_argument(
        "--image-folder",
        default=None,
        help="folder the predictions' image paths are relative to; default: the one the run recorded "
        "(eval/run.json). Pass it for a run copied to another machine",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7861)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from llava.serve.web import launch

    try:
        run = load_run(args.run_dir, args.image_folder)
    except (FileNotFoundError, ValueError) as error:
        print(error, file=sys.stderr)
        return 2
    launch(build_app(run), args.host, args.port, css=CSS)
    return 0


if __name__ == "__main__":
    from llava.entry import run

    sys.exit(run(main))
