"""llava.bitsandbytes_probe: importing bitsandbytes after llava never calls the Hub kernel probe."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def has_avx512bf16() -> bool:
    """bitsandbytes probes the Hub only on such CPUs (asked in a child, after ``import llava``)."""
    code = "import llava; from bitsandbytes.functional import has_avx512bf16; print(bool(has_avx512bf16()))"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    return result.stdout.strip().endswith("True")


@pytest.fixture
def fake_kernels(tmp_path):
    """A ``kernels`` package first on the path whose get_kernel leaves a mark, then fails as offline."""
    package = tmp_path / "fake" / "kernels"
    package.mkdir(parents=True)
    mark = tmp_path / "probed"
    package.joinpath("__init__.py").write_text(
        "from pathlib import Path\n"
        "def get_kernel(repo_id, **kwargs):\n"
        f"    Path({str(mark)!r}).write_text(repo_id)\n"
        "    raise ValueError('offline')\n"
    )
    return tmp_path / "fake", mark


def run(code: str, fake_path: Path, **env: str) -> subprocess.CompletedProcess:
    environ = {key: value for key, value in os.environ.items() if key != "LLAVA_BNB_HUB_KERNEL"}
    environ.update(PYTHONPATH=os.pathsep.join([str(fake_path), str(ROOT)]), **env)
    return subprocess.run([sys.executable, "-c", code], env=environ, capture_output=True, text=True, timeout=300)


pytestmark = pytest.mark.skipif(not has_avx512bf16(), reason="bitsandbytes only probes on AVX512-BF16 CPUs")


def test_without_llava_bitsandbytes_probes_the_hub(fake_kernels):
    """The probe this module prevents (so the test below can fail)."""
    fake_path, mark = fake_kernels
    result = run("import bitsandbytes", fake_path)
    assert mark.read_text() == "kernels-community/quantization-bitsandbytes"
    assert "Failed to load CPU gemm_4bit_forward" in result.stderr


def test_after_import_llava_bitsandbytes_never_probes_and_says_nothing(fake_kernels):
    fake_path, mark = fake_kernels
    code = (
        "import llava, bitsandbytes, sys, torch\n"
        "import kernels\n"  # still importable for everything else
        "assert callable(kernels.get_kernel)\n"
        "from bitsandbytes.functional import quantize_4bit, dequantize_4bit\n"
        "torch.manual_seed(0)\n"
        "w = torch.randn(64, 64)\n"
        "q, state = quantize_4bit(w, quant_type='nf4')\n"
        "assert (dequantize_4bit(q, state) - w).abs().mean() < 0.1\n"  # NF4's typical error is about 0.07
    )
    result = run(code, fake_path)
    assert result.returncode == 0, result.stderr
    assert not mark.exists()
    assert "kernels-community" not in result.stderr, result.stderr


def test_opt_in_leaves_bitsandbytes_alone(fake_kernels):
    fake_path, mark = fake_kernels
    run("import llava, bitsandbytes", fake_path, LLAVA_BNB_HUB_KERNEL="1")
    assert mark.exists()
