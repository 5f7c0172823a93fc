"""Regenerate ``patches/*.patch``: the project's two patches as unified diffs against the stock tree.

    python scripts/make_patches.py            # rewrite patches/*.patch from the working tree
    python scripts/make_patches.py --check    # exit 1 if they are stale (CI and tests run this)

A patch is (a) the files it adds, listed in ``PATCHES`` below, and (b) the
lines it adds to stock files, fenced in those files by marker comments::

    # [patch 0001-eval-between-epochs]
    ...wiring...
    # [/patch 0001-eval-between-epochs]

The stock version of a file is the file with its fenced blocks (markers
included) removed, so the diffs always describe the code as it is. Patches are
disjoint: each one reverses on the full tree by itself (``git apply -R``).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PATCHES: dict[str, dict] = {
    "0001-eval-between-epochs": {
        "summary": "Evaluation between epochs: eval loss and OK-VQA accuracy from batched generation",
        "adds": [
            "llava/eval/vqa_accuracy.py",
            "llava/metrics/__init__.py",
            "llava/metrics/choices.py",
            "llava/metrics/normalization.py",
            "llava/metrics/vqa.py",
            "llava/metrics/annotations.py",
            "llava/eval/eval_okvqa.py",
            "llava/eval/eval_vqa.py",
            "llava/train/evaluation.py",
            "llava/train/eval_arguments.py",
            "llava/train/eval_reporting.py",
            "llava/eval/batching.py",
            "docs/EVALUATION.md",
            "tests/eval/test_vqa_accuracy.py",
            "tests/eval/test_eval_okvqa.py",
            "tests/eval/test_eval_vqa.py",
            "tests/metrics/test_normalization.py",
            "tests/metrics/test_annotations.py",
            "tests/metrics/test_choices.py",
            "tests/train/test_evaluation.py",
            "tests/train/evaluation_train.py",
            "tests/train/test_eval_reporting.py",
            "tests/eval/test_batching.py",
        ],
    },
    "0002-okvqa-converter": {
        "summary": "An OK-VQA converter that gets the data right",
        "adds": [
            "llava/data/vqa.py",
            "llava/data/conversion.py",
            "llava/data/image_files.py",
            "llava/data/output_files.py",
            "llava/data/tables.py",
            "llava/data/okvqa.py",
            "llava/data/okvqa_readers.py",
            "llava/data/aokvqa.py",
            "docs/OKVQA.md",
            "docs/CUSTOM_DATA.md",
            "scripts/benchmark_okvqa_converter.py",
            "scripts/benchmark_vqa_converter.py",
            "tests/data/conftest.py",
            "tests/data/test_okvqa.py",
            "tests/data/test_vqa.py",
            "tests/data/test_aokvqa.py",
        ],
    },
}

# Files that may carry fenced wiring; any other file with a marker is an error.
SEARCHED = ("llava", "scripts", "tests", "docs")


def fence(name: str) -> re.Pattern:
    return re.compile(
        rf"^[ \t]*(?:#|<!--)[ \t]*\[patch {re.escape(name)}\].*?\n"
        rf".*?^[ \t]*(?:#|<!--)[ \t]*\[/patch {re.escape(name)}\][^\n]*\n",
        re.DOTALL | re.MULTILINE,
    )


def fenced_files(name: str) -> list[str]:
    marker = f"[patch {name}]"
    found = []
    for folder in SEARCHED:
        for path in sorted((ROOT / folder).rglob("*")):
            if path.is_file() and path.suffix in (".py", ".md", ".sh", ".json") and path != Path(__file__):
                if marker in path.read_text(errors="replace"):
                    found.append(path.relative_to(ROOT).as_posix())
    return found


def build_patch(name: str) -> str:
    """The unified diff (git format) of patch ``name`` against the tree without it."""
    spec = PATCHES[name]
    with tempfile.TemporaryDirectory() as scratch:
        before, after = Path(scratch, "a"), Path(scratch, "b")
        for relative in spec["adds"]:
            target = after / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ROOT / relative, target)
        for relative in fenced_files(name):
            text = (ROOT / relative).read_text()
            for root, content in ((after, text), (before, fence(name).sub("", text))):
                (root / relative).parent.mkdir(parents=True, exist_ok=True)
                (root / relative).write_text(content)
        before.mkdir(exist_ok=True)
        result = subprocess.run(
            ["git", "diff", "--no-index", "--no-color", "--full-index", "--src-prefix=a/", "--dst-prefix=b/", "a", "b"],
            cwd=scratch,
            capture_output=True,
            text=True,
        )
        if result.returncode not in (0, 1):
            raise RuntimeError(result.stderr)
        diff = result.stdout
    # git names the compared folders a/ and b/: strip them from every path.
    diff = re.sub(r"(?m)^diff --git a/[ab]/(\S+) b/[ab]/(\S+)$", r"diff --git a/\1 b/\2", diff)
    diff = re.sub(r"(?m)^(--- a/)a/", r"\1", diff)
    diff = re.sub(r"(?m)^(\+\+\+ b/)b/", r"\1", diff)
    header = f"From llava-okvqa\nSubject: [PATCH {name[:4]}] {spec['summary']}\n\n"
    return header + diff


def main(argv: list[str] | None = None) -> int:
    from llava.entry import HelpFormatter
    from llava.flags import Parser

    parser = Parser(formatter_class=HelpFormatter, description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only check that patches/ is up to date")
    args = parser.parse_args(argv)
    stale = []
    for name in PATCHES:
        path = ROOT / "patches" / f"{name}.patch"
        text = build_patch(name)
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(path.relative_to(ROOT).as_posix())
        else:
            path.write_text(text)
            print(f"wrote {path.relative_to(ROOT)} ({text.count(chr(10))} lines)")
    if stale:
        print("stale: " + ", ".join(stale) + " (run python scripts/make_patches.py)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
