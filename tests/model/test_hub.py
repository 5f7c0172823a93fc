"""Hub ids wherever a model path is taken, tested offline on a Hugging Face cache laid out in the test.

The tiny base model and a real tiny LoRA run (plus a projector-only run) are
placed in ``HF_HUB_CACHE`` under Hub ids, and a subprocess with
``HF_HUB_OFFLINE=1`` loads them by id: the loss must equal the local load's.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from lora_fixture import train_tiny_lora

ROOT = Path(__file__).resolve().parents[2]
COMMIT = "0123456789abcdef0123456789abcdef01234567"
BASE_ID, LORA_ID, PROJECTOR_ID = "liuhaotian/llava-tiny", "someone/llava-tiny-task-lora", "someone/llava-tiny-pretrain"

# Runs in a fresh interpreter so huggingface_hub reads HF_HUB_CACHE / HF_HUB_OFFLINE at import.
LOADER = r"""
import json, sys, torch
sys.path.insert(0, sys.argv[2])
from lora_fixture import prompt_inputs
from llava.constants import IGNORE_INDEX, IMAGE_TOKEN_INDEX
from llava.model.builder import load_pretrained_model
cases = json.loads(sys.argv[1])
losses = {}
for name, (path, base, model_name) in cases.items():
    tokenizer, model, processor, _ = load_pretrained_model(path, base, model_name, device="cpu")
    ids, pixels, _ = prompt_inputs(tokenizer, processor, model.config)
    labels = ids.clone()
    labels[labels == IMAGE_TOKEN_INDEX] = IGNORE_INDEX
    with torch.no_grad():
        losses[name] = model(input_ids=ids, images=pixels, labels=labels).loss.item()
print("LOSSES" + json.dumps(losses))
"""


def _put_in_cache(cache: Path, repo_id: str, files: list[Path]) -> None:
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    for path in files:
        shutil.copy2(path, snapshot / path.name)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)


@pytest.fixture(scope="module")
def hub_cache(tiny_llava_dir, colour_vqa_dir, tmp_path_factory):
    lora_run = train_tiny_lora(tmp_path_factory.mktemp("lora"), tiny_llava_dir, colour_vqa_dir)
    projector_run = tmp_path_factory.mktemp("pretrain") / "llava-tiny-pretrain"
    projector_run.mkdir()
    shutil.copy2(tiny_llava_dir / "config.json", projector_run / "config.json")
    from safetensors.torch import load_file

    weights = load_file(str(tiny_llava_dir / "model.safetensors"))
    torch.save(
        {key: value * 1.5 for key, value in weights.items() if "mm_projector" in key},
        projector_run / "mm_projector.bin",
    )

    cache = tmp_path_factory.mktemp("hf-cache")
    _put_in_cache(cache, BASE_ID, [p for p in tiny_llava_dir.iterdir() if p.is_file()])
    _put_in_cache(cache, LORA_ID, [p for p in lora_run.iterdir() if p.is_file()])
    _put_in_cache(cache, PROJECTOR_ID, [p for p in projector_run.iterdir() if p.is_file()])
    return cache, lora_run, projector_run


def _run(cache: Path, code: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(
        os.environ,
        HF_HUB_CACHE=str(cache),
        HF_HUB_OFFLINE="1",
        OMP_NUM_THREADS="1",
        PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    )
    return subprocess.run(
        [sys.executable, "-c", code, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )


def test_hub_ids_load_like_local_paths(hub_cache, tiny_llava_dir):
    cache, lora_run, projector_run = hub_cache
    cases = {
        "lora_hub": [LORA_ID, BASE_ID, "llava-tiny-task-lora"],
        "lora_local": [str(lora_run), str(tiny_llava_dir), "llava-tiny-task-lora"],
        "projector_hub": [PROJECTOR_ID, BASE_ID, "llava-tiny-pretrain"],
        "projector_local": [str(projector_run), str(tiny_llava_dir), "llava-tiny-pretrain"],
        "full_hub": [BASE_ID, None, "llava-tiny"],
        "full_local": [str(tiny_llava_dir), None, "llava-tiny"],
    }
    result = _run(cache, LOADER, json.dumps(cases), str(ROOT / "tests"))
    assert result.returncode == 0, result.stderr[-4000:]
    losses = json.loads(result.stdout.split("LOSSES", 1)[1])
    for kind in ("lora", "projector", "full"):
        assert losses[f"{kind}_hub"] == losses[f"{kind}_local"], (kind, losses)
    # Each run really changes the model, so equal losses mean the run's files were used.
    assert abs(losses["lora_hub"] - losses["full_hub"]) > 1e-4
    assert abs(losses["projector_hub"] - losses["full_hub"]) > 1e-4


@pytest.mark.slow
def test_merge_script_takes_hub_ids(hub_cache, tmp_path):
    cache, _, _ = hub_cache
    out = tmp_path / "merged"
    code = (
        "import sys; sys.argv[0] = 'merge'; import runpy; "
        "runpy.run_path('scripts/merge_lora_weights.py', run_name='__main__')"
    )
    result = _run(cache, code, "--model-path", LORA_ID, "--model-base", BASE_ID, "--save-model-path", str(out))
    assert result.returncode == 0, result.stderr[-4000:]
    assert {"model.safetensors", "tokenizer.model", "special_tokens_map.json"} <= {p.name for p in out.iterdir()}


def test_an_unknown_id_offline_is_a_clear_error(hub_cache):
    cache, _, _ = hub_cache
    code = (
        "from llava.model.builder import load_pretrained_model\n"
        "load_pretrained_model('nobody/llava-missing-lora', 'liuhaotian/llava-tiny', 'llava-missing-lora')"
    )
    result = _run(cache, code)
    assert result.returncode != 0
    assert "FileNotFoundError: nobody/llava-missing-lora is not a local folder" in result.stderr


@pytest.mark.slow
def test_export_hf_takes_hub_ids(hub_cache, tmp_path):
    cache, _, _ = hub_cache
    out = tmp_path / "hf"
    code = "from llava.export_hf import main; import sys; main(sys.argv[1:])"
    result = _run(cache, code, "--model-path", LORA_ID, "--model-base", BASE_ID, "--out", str(out))
    assert result.returncode == 0, result.stderr[-4000:]
    assert json.loads((out / "config.json").read_text())["model_type"] == "llava"
