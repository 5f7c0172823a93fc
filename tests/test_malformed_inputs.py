"""One clear line for every malformed file: each entry point that reads a JSON file a user hands
it (converters, scorer, pre-flight, evaluation browser) is fed the same file in each broken form:
truncated, non-UTF-8, deeply nested, the wrong type, empty. Each ends with its documented exit
status and a message naming the file, never a traceback. (Resume: tests/train/test_checkpoint_safety.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

MALFORMED = {
    "truncated": b'[{"question_id": 1, "image": "a.jpg", "quest',
    "non-utf8": b'[{"question": "caf\xe9"}]',
    "deeply-nested": b"[" * 100_000 + b"]" * 100_000,
    "wrong-type": b'{"not": "a list"}',
    "empty": b"",
}


def _vqa(tmp: Path, bad: Path) -> tuple[int, Path]:
    from llava.data import vqa

    return vqa.main(["--input", str(bad), "--out", str(tmp / "out")]), bad


def _okvqa(tmp: Path, bad: bytes) -> tuple[int, Path]:
    from llava.data import okvqa
    from llava.data.okvqa_readers import ANNOTATION_FILES, QUESTION_FILES

    raw, coco = tmp / "okvqa", tmp / "coco"
    raw.mkdir()
    for split in ("train", "val"):
        (coco / f"{split}2014").mkdir(parents=True)
        (raw / QUESTION_FILES[split]).write_text(json.dumps({"questions": []}))
        (raw / ANNOTATION_FILES[split]).write_text(json.dumps({"annotations": []}))
    target = raw / ANNOTATION_FILES["train"]
    target.write_bytes(bad)
    return okvqa.main(["--okvqa-dir", str(raw), "--coco-dir", str(coco), "--out", str(tmp / "out")]), target


def _aokvqa(tmp: Path, bad: bytes) -> tuple[int, Path]:
    from llava.data import aokvqa
    from llava.data.aokvqa import ANNOTATION_FILES

    raw, coco = tmp / "aokvqa", tmp / "coco"
    raw.mkdir()
    for split in ("train", "val"):
        (coco / f"{split}2017").mkdir(parents=True)
        (raw / ANNOTATION_FILES[split]).write_text("[]")
    target = raw / ANNOTATION_FILES["train"]
    target.write_bytes(bad)
    return aokvqa.main(["--aokvqa-dir", str(raw), "--coco-dir", str(coco), "--out", str(tmp / "out")]), target


def _scorer_annotations(tmp: Path, bad: bytes) -> tuple[int, Path]:
    from llava.eval import eval_okvqa

    answers = tmp / "answers.jsonl"
    answers.write_text('{"question_id": 1, "text": "dog"}\n')
    target = tmp / "val_annotations.json"
    target.write_bytes(bad)
    with pytest.raises(SystemExit) as stop:
        eval_okvqa.main(["--answers", str(answers), "--annotations", str(target)])
    return stop.value.code, target


def _scorer_answers(tmp: Path, bad: bytes) -> tuple[int, Path]:
    from llava.eval import eval_okvqa

    annotations = tmp / "val_annotations.json"
    annotations.write_text(json.dumps({"questions": {"1": {"answers": ["dog"] * 10}}}))
    target = tmp / "answers.jsonl"
    target.write_bytes(bad.replace(b"\n", b" ") if bad else b"")
    try:
        eval_okvqa.main(["--answers", str(target), "--annotations", str(annotations)])
    except SystemExit as stop:
        return stop.code, target
    return 0, target


def _browser(tmp: Path, bad: bytes) -> tuple[int, Path]:
    from llava.serve import eval_browser

    target = tmp / "run" / "eval" / "history.json"
    target.parent.mkdir(parents=True)
    target.write_bytes(bad)
    return eval_browser.main([str(tmp / "run")]), target


def _preflight(tmp: Path, bad: bytes, tokenizer: Path) -> tuple[int, Path]:
    from llava.train import preflight

    target = tmp / "train.json"
    target.write_bytes(bad)
    return preflight.main(["--data_path", str(target), "--tokenizer", str(tokenizer)]), target


ENTRY_POINTS = {
    # name: (runner, exit status documented for a bad input)
    "llava.data.vqa": (lambda tmp, bad, _: _vqa(tmp, _write(tmp / "vqa.json", bad)), 1),
    "llava.data.okvqa": (lambda tmp, bad, _: _okvqa(tmp, bad), 1),
    "llava.data.aokvqa": (lambda tmp, bad, _: _aokvqa(tmp, bad), 1),
    "eval_okvqa --annotations": (lambda tmp, bad, _: _scorer_annotations(tmp, bad), 2),
    "eval_okvqa --answers": (lambda tmp, bad, _: _scorer_answers(tmp, bad), 2),
    "eval_browser": (lambda tmp, bad, _: _browser(tmp, bad), 2),
    "preflight": (lambda tmp, bad, tokenizer: _preflight(tmp, bad, tokenizer), 1),
}


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# A JSON Lines answers file has no "wrong type" or "empty" form of its own (tested in tests/eval).
CASES = [
    (entry, kind)
    for entry in sorted(ENTRY_POINTS)
    for kind in sorted(MALFORMED)
    if not (entry == "eval_okvqa --answers" and kind in ("wrong-type", "empty"))
]


@pytest.mark.parametrize(("entry", "kind"), CASES)
def test_a_malformed_file_gets_one_clear_message(entry, kind, tmp_path, capsys, tiny_tokenizer_dir):
    runner, expected = ENTRY_POINTS[entry]
    code, target = runner(tmp_path, MALFORMED[kind], tiny_tokenizer_dir)
    printed = capsys.readouterr()
    text = printed.err + printed.out
    assert code == expected, text[-2000:]
    assert str(target) in text or target.name in text, text[-2000:]
    assert "Traceback" not in text
