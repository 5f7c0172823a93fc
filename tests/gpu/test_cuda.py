"""The CUDA path, for real (marker ``gpu``; skipped where no CUDA device is visible).

Each test runs its work in a subprocess that sees the user's GPUs (the rest of the suite hides
them): a tiny 4-bit bf16 QLoRA run, a ZeRO-2 run on one GPU through the deepspeed launcher,
answering and merging that run on cuda (fp16, after bf16 training: the base check must accept
it), and FlashAttention-2 against SDPA where flash-attn is installed. All offline, under the
socket guard. ``scripts/gpu_check.sh`` runs these first.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from devices import cuda_count, gpu_environment
from lora_fixture import tiny_lora_flags
from offline import assert_stayed_offline, offline_env

ROOT = Path(__file__).resolve().parents[2]
TRAIN = Path(__file__).with_name("cuda_train.py")

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module", autouse=True)
def _needs_cuda():
    if cuda_count() == 0:
        pytest.skip("needs a CUDA device")


def _run(command: list[str], tmp: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    sockets = tmp / "sockets.log"
    env = offline_env(sockets, gpu_environment(WANDB_MODE="disabled", TOKENIZERS_PARALLELISM="false"))
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(command[:5])} ...:\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}"
    assert_stayed_offline(sockets)
    return result


def _qlora_flags(model: Path, data: Path, out: Path) -> list[str]:
    return [*tiny_lora_flags(model, data, out, max_steps=4), "--bits", "4", "--bf16", "True", "--tf32", "True"]


def _report(path: Path) -> dict:
    report = json.loads(path.read_text())
    assert report["losses"] and all(math.isfinite(loss) for loss in report["losses"]), report
    return report


def test_qlora_4bit_bf16_steps_run_on_cuda(tiny_llava_dir, colour_vqa_dir, tmp_path):
    out = tmp_path / "llava-tiny-qlora"
    _run(
        [
            sys.executable,
            str(TRAIN),
            *_qlora_flags(tiny_llava_dir, colour_vqa_dir, out),
            "--report",
            str(tmp_path / "r.json"),
        ],
        tmp_path,
    )
    report = _report(tmp_path / "r.json")
    assert report["device"].startswith("cuda") and report["dtype"] == "torch.bfloat16", report
    assert (out / "adapter_model.safetensors").exists()


@pytest.fixture(scope="module")
def zero2_run(tiny_llava_dir, colour_vqa_dir, tmp_path_factory) -> Path:
    """ZeRO-2 QLoRA on one GPU through the deepspeed launcher, as the main script runs it."""
    tmp = tmp_path_factory.mktemp("zero2-cuda")
    out = tmp / "llava-tiny-task-lora"
    launcher = shutil.which("deepspeed") or str(Path(sys.executable).with_name("deepspeed"))
    flags = _qlora_flags(tiny_llava_dir, colour_vqa_dir, out)
    command = [launcher, "--num_gpus", "1", str(TRAIN), *flags, "--deepspeed", str(ROOT / "scripts" / "zero2.json")]
    _run([*command, "--report", str(tmp / "r.json")], tmp)
    assert _report(tmp / "r.json")["device"].startswith("cuda")
    return out


def test_zero2_one_gpu_answers_and_merges_on_cuda_in_fp16(zero2_run, tiny_llava_dir, colour_vqa_dir, tmp_path):
    """Trained in bf16, answered and merged in fp16 on cuda: the base check accepts the same base."""
    questions, answers = tmp_path / "questions.jsonl", tmp_path / "answers.jsonl"
    samples = [s for s in json.loads((colour_vqa_dir / "train.json").read_text()) if "image" in s][:8]
    questions.write_text(
        "".join(
            json.dumps(
                {"question_id": i, "image": s["image"], "text": s["conversations"][0]["value"].replace("<image>\n", "")}
            )
            + "\n"
            for i, s in enumerate(samples)
        )
    )
    _run(
        [
            sys.executable, "-m", "llava.eval.model_vqa",
            "--model-path", str(zero2_run), "--model-base", str(tiny_llava_dir),
            "--question-file", str(questions),
            "--image-folder", str(colour_vqa_dir / "images"),
            "--answers-file", str(answers), "--temperature", "0", "--max-new-tokens", "4",
            "--batch-size", "8", "--device", "cuda",
        ],
        tmp_path,
    )  # fmt: skip
    assert len(answers.read_text().splitlines()) == len(samples)
    # The static KV cache (its decode step compiled on CUDA) answers the same, greedy.
    static = tmp_path / "answers-static.jsonl"
    _run(
        [
            sys.executable, "-m", "llava.eval.model_vqa",
            "--model-path", str(zero2_run), "--model-base", str(tiny_llava_dir),
            "--question-file", str(questions),
            "--image-folder", str(colour_vqa_dir / "images"),
            "--answers-file", str(static), "--temperature", "0", "--max-new-tokens", "4",
            "--batch-size", "8", "--device", "cuda", "--kv-cache", "static",
        ],
        tmp_path,
    )  # fmt: skip
    texts = [json.loads(line)["text"] for line in answers.read_text().splitlines()]
    assert [json.loads(line)["text"] for line in static.read_text().splitlines()] == texts
    merged = tmp_path / "llava-tiny-task-merged"
    _run(
        [
            sys.executable, str(ROOT / "scripts" / "merge_lora_weights.py"),
            "--model-path", str(zero2_run), "--model-base", str(tiny_llava_dir),
            "--save-model-path", str(merged), "--device", "cuda",
        ],
        tmp_path,
    )  # fmt: skip
    assert (merged / "model.safetensors").exists()


FLASH_CHECK = """
import sys, torch
from llava.model import LlavaLlamaForCausalLM
ids = torch.tensor([[1, 10, 11, 12, 13]], device="cuda")
logits = {}
for impl in ("sdpa", "flash_attention_2"):
    model = LlavaLlamaForCausalLM.from_pretrained(sys.argv[1], attn_implementation=impl, dtype=torch.bfloat16,
                                                  use_kernels=False).cuda()
    logits[impl] = model(input_ids=ids).logits.float()
torch.testing.assert_close(logits["sdpa"], logits["flash_attention_2"], atol=2e-2, rtol=2e-2)
"""


def test_flash_attention_agrees_with_sdpa(tiny_llava_dir, tmp_path):
    if subprocess.run([sys.executable, "-c", "import flash_attn"], capture_output=True).returncode != 0:
        pytest.skip("flash-attn is not installed (pip install -e '.[flash]')")
    _run([sys.executable, "-c", FLASH_CHECK, str(tiny_llava_dir)], tmp_path)


def test_liger_losses_match_the_unfused_path(tiny_llava_dir, colour_vqa_dir, tmp_path):
    """Liger-Kernel's fused RMSNorm, RoPE, SwiGLU and linear + cross-entropy: the same losses, rounding aside."""
    if subprocess.run([sys.executable, "-c", "import liger_kernel"], capture_output=True).returncode != 0:
        pytest.skip("liger-kernel is not installed (pip install -e '.[gpu]')")
    losses = {}
    for use_liger in ("True", "False"):
        out = tmp_path / f"llava-tiny-liger-{use_liger}"
        flags = [*_qlora_flags(tiny_llava_dir, colour_vqa_dir, out), "--use_liger", use_liger]
        result = _run([sys.executable, str(TRAIN), *flags, "--report", str(tmp_path / f"{use_liger}.json")], tmp_path)
        assert ("Liger-Kernel: fused" in result.stdout + result.stderr) == (use_liger == "True")
        losses[use_liger] = _report(tmp_path / f"{use_liger}.json")["losses"]
    assert losses["True"] == pytest.approx(losses["False"], rel=2e-2), losses
