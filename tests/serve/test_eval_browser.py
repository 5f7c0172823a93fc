"""The evaluation browser: reading a run's eval files, filters, the table, and the page in Chromium."""

from __future__ import annotations

import json

import pytest
from browser import artifacts_dir, chromium_page, served, skip_reason
from eval_run import write_eval_run

from llava.serve.eval_browser import (
    answers_summary,
    curves_figure,
    load_run,
    outcome,
    render_table,
    select_rows,
    summary_markdown,
)


@pytest.fixture(scope="module")
def run_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("eval-run")
    return write_eval_run(folder / "run", folder / "data")


@pytest.fixture()
def run(run_files):
    run_dir, images = run_files
    return load_run(run_dir, images)


def ids(rows):
    return [row.record["question_id"] for row in rows]


def test_reads_every_evaluation_in_order_with_its_predictions(run):
    assert [e.tag for e in run.evaluations] == ["epoch_0", "epoch_1", "epoch_2"]
    assert [len(e.records) for e in run.evaluations] == [12, 12, 12]
    assert [e.eval_loss for e in run.evaluations] == [2.0, 1.5, 1.0]
    assert run.evaluations[2].vqa_accuracy == pytest.approx(100 * 11 / 12)
    assert run.categories() == ["nine", "three"]
    assert "| epoch_2 | 2 | 6 | 1.0000 | 91.67 | 91.67 | 12 |" in summary_markdown(run)


def improved_shape_questions(run) -> list[str]:
    """Shape questions epoch 1 got wrong (it said 'circle') and epoch 2 right (all but the last)."""
    return [
        r["question_id"]
        for r in run.evaluation("epoch_2").records
        if r["question_type"] == "nine" and r["answers"][0] != "circle" and r["question_id"] != "q11"
    ]


def test_filters_by_category_result_and_change_between_epochs(run):
    assert len(select_rows(run, "epoch_2")) == 12
    assert ids(select_rows(run, "epoch_1", category="three")) == [f"q{i}" for i in range(0, 12, 2)]
    assert ids(select_rows(run, "epoch_2", result="wrong")) == ["q11"]
    assert len(select_rows(run, "epoch_1", result="right")) == 6
    improved = select_rows(run, "epoch_2", compare_tag="epoch_1", change="improved")
    assert ids(improved) == improved_shape_questions(run)
    assert all(row.compared["vqa_accuracy"] == 0.0 and row.record["vqa_accuracy"] == 1.0 for row in improved)
    assert ids(select_rows(run, "epoch_1", compare_tag="epoch_0", change="got worse")) == [
        r["question_id"]
        for r in run.evaluation("epoch_0").records
        if r["vqa_accuracy"] == 1.0 and r["question_type"] == "nine"
    ]
    changed = select_rows(run, "epoch_2", compare_tag="epoch_1", change="changed")
    unchanged = select_rows(run, "epoch_2", compare_tag="epoch_1", change="unchanged")
    assert sorted(ids(changed) + ids(unchanged)) == sorted(ids(select_rows(run, "epoch_2")))
    with pytest.raises(ValueError, match="result filter"):
        select_rows(run, "epoch_2", result="maybe")


def test_outcomes_and_answer_summaries():
    assert [outcome(s) for s in (1.0, 0.6, 0.0)] == ["right", "partly right", "wrong"]
    assert answers_summary(["dog"] * 6 + ["puppy"] * 3 + ["pet"]) == "dog ×6, puppy ×3, pet"


def test_table_has_a_thumbnail_per_row_escapes_text_and_says_when_a_picture_is_missing(run, run_files):
    html = render_table(run, select_rows(run, "epoch_2"))
    assert html.count("<tr data-question-id=") == 12
    assert html.count('src="data:image/jpeg;base64,') == 12
    record = dict(run.evaluation("epoch_2").records[0], question="<b>bold?</b>", image="nowhere.png")
    from llava.serve.eval_browser import Row

    html = render_table(run, [Row(record, record)], compare_tag="epoch_1")
    assert "&lt;b&gt;bold?&lt;/b&gt;" in html and "<b>bold" not in html
    assert "missing: nowhere.png" in html and "prediction at epoch_1" in html


def test_curves_have_loss_accuracy_and_every_category(run):
    figure = curves_figure(run)
    loss, accuracy, categories = figure.axes
    assert list(loss.lines[0].get_ydata()) == [2.0, 1.5, 1.0]
    assert [line.get_label() for line in accuracy.lines] == ["VQA accuracy", "exact match"]
    assert sorted(line.get_label() for line in categories.lines) == ["nine", "three"]


def test_every_problem_is_reported_at_once_with_file_and_line(tmp_path, run_files):
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(run_files[0], run_dir)
    eval_dir = run_dir / "eval"
    lines = (eval_dir / "epoch_1.jsonl").read_text().splitlines()
    lines[2] = "{broken"
    lines[4] = json.dumps({"question_id": "q4"})
    (eval_dir / "epoch_1.jsonl").write_text("\n".join(lines) + "\n")
    (eval_dir / "epoch_2.jsonl").unlink()
    with pytest.raises(ValueError) as error:
        load_run(run_dir)
    message = str(error.value)
    assert "3 problems" in message
    assert "epoch_1.jsonl:3: not valid JSON" in message
    assert "epoch_1.jsonl:5: record lacks ['question', 'prediction', 'answers', 'vqa_accuracy']" in message
    assert "epoch_2.jsonl, which is missing" in message
    with pytest.raises(FileNotFoundError, match="history.json: not found"):
        load_run(tmp_path / "no-run")


def test_the_browser_never_imports_a_model_stack(run_files):
    import subprocess
    import sys

    code = (
        "import sys; from llava.serve.eval_browser import load_run, select_rows; "
        f"run = load_run({str(run_files[0])!r}); select_rows(run, 'epoch_2'); "
        "print(sorted(m for m in ('torch', 'transformers', 'gradio') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


# ---------------------------------------------------------------------------------------- in Chromium

BROWSER_SKIP = skip_reason()


@pytest.fixture(scope="module")
def browser_url(run_files, tmp_path_factory):
    if BROWSER_SKIP:
        pytest.skip(BROWSER_SKIP)
    run_dir, images = run_files
    log = tmp_path_factory.mktemp("eval-browser-log") / "server.log"
    with served("llava.serve.eval_browser", [str(run_dir), "--image-folder", str(images)], log) as url:
        yield url


def test_page_shows_every_question_with_its_thumbnail_and_a_filter_narrows_it(browser_url, run):
    improved = len(improved_shape_questions(run))
    shots = artifacts_dir()
    with chromium_page() as page:
        page.goto(browser_url)
        page.wait_for_selector("#eval-table tbody tr")
        rows = page.locator("#eval-table tbody tr")
        assert rows.count() == 12
        assert page.locator("#eval-table img.thumb").count() == 12
        widths = page.locator("#eval-table img.thumb").evaluate_all("images => images.map(i => i.naturalWidth)")
        assert all(width > 0 for width in widths), "every thumbnail decodes"
        assert "12 of 12 questions" in page.locator("#eval-status").inner_text()
        page.screenshot(path=str(shots / "eval_browser_all.png"), full_page=True)

        page.locator("#eval-result input").click()
        page.get_by_role("option", name="wrong", exact=True).click()
        page.wait_for_selector("#eval-status:has-text('1 of 12 questions')")
        assert rows.count() == 1 and "unsure" in rows.first.inner_text()

        page.locator("#eval-result input").click()
        page.get_by_role("option", name="all", exact=True).click()
        page.locator("#eval-compare input").click()
        page.get_by_role("option", name="epoch_1", exact=True).click()
        page.locator("#eval-change input").click()
        page.get_by_role("option", name="improved", exact=True).click()
        page.wait_for_selector(f"#eval-status:has-text('{improved} of 12 questions')")
        assert rows.count() == improved
        assert "prediction at epoch_1" in page.locator("#eval-table thead").inner_text()
        page.screenshot(path=str(shots / "eval_browser_improved.png"), full_page=True)


def test_paths_outside_the_run_and_image_folder_are_never_read(tmp_path, run_files):
    """Planted paths: an absolute picture, one climbing out, one probing /etc/passwd, and a
    predictions file outside the run. None is read; none says whether the file exists."""
    import shutil

    from llava.serve.eval_browser import Row

    secret = tmp_path / "secret.png"
    shutil.copy(next(run_files[1].rglob("*.png")), secret)
    run_dir = tmp_path / "run"
    shutil.copytree(run_files[0], run_dir)
    run = load_run(run_dir, run_files[1])
    base = run.evaluation("epoch_2").records[0]
    for image in (str(secret), "../" * 12 + str(secret).lstrip("/"), "../../etc/passwd"):
        record = dict(base, image=image)
        html = render_table(run, [Row(record, record)])
        assert "outside the run" in html and "data:image" not in html and "missing:" not in html, image
        assert run.thumbnail(image) is None
    history = json.loads((run_dir / "eval" / "history.json").read_text())
    history[0]["predictions"] = "/etc/passwd"
    history[1]["predictions"] = "../../../../etc/passwd"
    (run_dir / "eval" / "history.json").write_text(json.dumps(history))
    with pytest.raises(ValueError) as error:
        load_run(run_dir, run_files[1])
    assert str(error.value).count("names a predictions file outside the run; not read") == 2
    assert "passwd:1" not in str(error.value)


@pytest.mark.parametrize(
    ("history", "expected"),
    [
        (b"\xff\xfe[]", "not UTF-8 text"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b"[{broken", "not valid JSON"),
        (
            json.dumps([{"tag": "epoch_1", "epoch": 1, "global_step": 2, "vqa_accuracy": "NaN"}]).encode(),
            "must be numbers",
        ),
        (json.dumps([7]).encode(), "entry 0 is not an object"),
    ],
    ids=["non-utf8", "deeply-nested", "truncated", "wrong-type", "not-object"],
)
def test_a_malformed_history_is_one_clear_error_naming_the_file(tmp_path, history, expected):
    (tmp_path / "eval").mkdir()
    (tmp_path / "eval" / "history.json").write_bytes(history)
    with pytest.raises(ValueError) as error:
        load_run(tmp_path)
    assert "history.json" in str(error.value) and expected in str(error.value)


def test_category_names_are_never_markup(run_files, tmp_path):
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(run_files[0], run_dir)
    history = json.loads((run_dir / "eval" / "history.json").read_text())
    for entry in history:
        entry["per_category"] = {"$\\frac{$": 50.0, "<script>": 10.0}
    (run_dir / "eval" / "history.json").write_text(json.dumps(history))
    figure = curves_figure(load_run(run_dir, run_files[1]))
    figure.canvas.draw()  # mathtext would raise here
    labels = sorted(line.get_label() for line in figure.axes[2].lines)
    assert labels == sorted(["$\\frac{$".replace("$", "\\$"), "<script>"])
