"""scripts/benchmark_vqa_converter.py runs on a small size and reports the conversion it timed."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_benchmark_runs_on_a_small_size():
    for fmt in ("csv", "parquet"):
        result = subprocess.run(
            [
                sys.executable,
                "scripts/benchmark_vqa_converter.py",
                "--rows",
                "400",
                "--repeats",
                "1",
                "--format",
                fmt,
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=300,
        )
        assert f"built 400 rows on 100 images ({fmt})" in result.stdout
        assert re.search(r"no image check: best [0-9.]+ s of 1 .*train 360, val 40", result.stdout), result.stdout
