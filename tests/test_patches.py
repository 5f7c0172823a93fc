"""patches/*.patch describe the tree exactly: they are current, reverse in order (0002, then 0001)
on a copy of the tree, leave a stock tree without patch code, and re-apply to the same bytes."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PATCHES = sorted((ROOT / "patches").glob("*.patch"))

sys.path.insert(0, str(ROOT / "scripts"))
import make_patches  # noqa: E402


def tracked_files() -> list[str]:
    listing = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True)
    return [name for name in listing.stdout.split("\0") if name and (ROOT / name).is_file()]


def snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def git_apply(tree: Path, patch: Path, *flags: str) -> None:
    result = subprocess.run(["git", "apply", *flags, str(patch)], cwd=tree, capture_output=True, text=True)
    assert result.returncode == 0, f"git apply {' '.join(flags)} {patch.name}: {result.stderr}"


def test_both_patches_exist():
    assert [p.name for p in PATCHES] == ["0001-eval-between-epochs.patch", "0002-okvqa-converter.patch"]


def test_patches_are_up_to_date():
    assert make_patches.main(["--check"]) == 0, "run: python scripts/make_patches.py"


def test_reverse_then_reapply_gives_the_tree_back(tmp_path):
    if not (ROOT / ".git").exists():
        pytest.skip("needs the git checkout to list the tree")
    tree = tmp_path / "tree"
    for name in tracked_files():
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / name, tree / name)
    original = snapshot(tree)

    for patch in reversed(PATCHES):
        git_apply(tree, patch, "--reverse")
    stock = snapshot(tree)
    for spec in make_patches.PATCHES.values():
        assert not any(name in stock for name in spec["adds"])
    assert not [
        name
        for name, data in stock.items()
        if name.endswith(".py")
        and b"[patch 000" in data
        and not name.startswith(("scripts/make_patches", "tests/test_patches"))
    ]
    assert "llava/train/train.py" in stock and "llava/train/arguments.py" in stock

    for patch in PATCHES:
        git_apply(tree, patch)
    assert snapshot(tree) == original
