"""``scripts/merge_lora_weights.py``: a merged LoRA run loads without its base and computes what the adapter did.

One real tiny LoRA fine-tune (``tests/lora_fixture.py``) is merged by the
script run as users run it; the merged checkpoint's logits are compared with
the base model carrying the same adapter unmerged (PEFT) plus the run's
projector.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from offline import assert_stayed_offline, offline_env

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent
SCRIPT = ROOT / "scripts" / "merge_lora_weights.py"
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from lora_fixture import prompt_inputs, train_tiny_lora  # noqa: E402


@pytest.fixture(scope="session")
def lora_run(tmp_path_factory, tiny_llava_dir, colour_vqa_dir) -> Path:
    return train_tiny_lora(tmp_path_factory.mktemp("lora-run"), tiny_llava_dir, colour_vqa_dir)


@pytest.fixture(scope="session")
def merged_dir(tmp_path_factory, lora_run, tiny_llava_dir) -> Path:
    out = tmp_path_factory.mktemp("merged") / "llava-tiny-task-merged"
    sockets = out.parent / "sockets.log"
    env = offline_env(sockets, dict(os.environ, OMP_NUM_THREADS="1"))
    result = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--model-path",
            str(lora_run),
            "--model-base",
            str(tiny_llava_dir),
            "--save-model-path",
            str(out),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert_stayed_offline(sockets)
    return out


@pytest.fixture(scope="module")
def merge_script():
    spec = importlib.util.spec_from_file_location("merge_lora_weights", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _unmerged_lora_model(lora_run: Path, base: Path):
    """The base with the run's config and projector, and the adapter applied by PEFT but not merged."""
    from peft import PeftModel

    from llava.model import LlavaConfig, LlavaLlamaForCausalLM
    from llava.model.lora_loading import load_non_lora_weights

    model = LlavaLlamaForCausalLM.from_pretrained(str(base), config=LlavaConfig.from_pretrained(str(lora_run)))
    load_non_lora_weights(model, lora_run)
    peft_model = PeftModel.from_pretrained(model, str(lora_run))
    model.get_vision_tower().load_model()
    return peft_model.eval()


def _logits(model, input_ids, pixel_values) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=input_ids, images=pixel_values).logits


def test_merged_checkpoint_loads_without_base_and_matches_unmerged_lora(merged_dir, lora_run, tiny_llava_dir):
    from llava.model.builder import load_pretrained_model

    tokenizer, merged, image_processor, _ = load_pretrained_model(str(merged_dir), None, merged_dir.name, device="cpu")
    input_ids, pixel_values, _ = prompt_inputs(tokenizer, image_processor, merged.config)
    merged_logits = _logits(merged, input_ids, pixel_values)

    reference = _unmerged_lora_model(lora_run, tiny_llava_dir)
    assert any("lora_A" in name for name, _ in reference.named_parameters())  # really unmerged
    reference_logits = _logits(reference.get_base_model(), input_ids, pixel_values)
    difference = (merged_logits - reference_logits).abs().max().item()
    assert difference < 1e-5, difference

    # The comparison means something: the run moved the model away from its base.
    _, base, _, _ = load_pretrained_model(str(tiny_llava_dir), None, "llava-tiny", device="cpu")
    assert (merged_logits - _logits(base, input_ids, pixel_values)).abs().max().item() > 1e-2


def test_merged_checkpoint_layout(merged_dir, lora_run):
    from safetensors.torch import load_file

    from llava.model import LlavaLlamaForCausalLM

    files = {path.name for path in merged_dir.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer_config.json", "generation_config.json"} <= files
    # Upstream's loader reads the slow tokenizer: it needs these three.
    assert {"tokenizer.model", "special_tokens_map.json", "tokenizer_config.json"} <= files
    assert "adapter_config.json" not in files
    assert not [p for p in merged_dir.parent.iterdir() if p.name.startswith(".")], "staging folder left behind"

    config = json.loads((merged_dir / "config.json").read_text())
    run_config = json.loads((lora_run / "config.json").read_text())
    mm_keys = [key for key in run_config if key.startswith("mm_")] + ["use_mm_proj", "image_aspect_ratio"]
    assert {key: config[key] for key in mm_keys} == {key: run_config[key] for key in mm_keys}
    assert config["model_type"] == "llava_llama" and config["mm_vision_tower"]

    weights = load_file(str(merged_dir / "model.safetensors"))
    assert not [key for key in weights if key.startswith("model.vision_tower.")]
    assert not [key for key in weights if "lora_" in key or "base_layer" in key]
    trained = torch.load(lora_run / "non_lora_trainables.bin", weights_only=True)
    for key, value in trained.items():
        assert torch.equal(weights[key.removeprefix("base_model.model.")], value), key

    _, info = LlavaLlamaForCausalLM.from_pretrained(str(merged_dir), output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info


def test_refuses_existing_output_and_non_run(merge_script, tmp_path, tiny_llava_dir, lora_run):
    existing = tmp_path / "merged"
    existing.mkdir()
    with pytest.raises(FileExistsError, match="--overwrite"):
        merge_script.main(
            ["--model-path", str(lora_run), "--model-base", str(tiny_llava_dir), "--save-model-path", str(existing)]
        )
    with pytest.raises(FileNotFoundError, match="not a LoRA"):
        merge_script.main(
            [
                "--model-path",
                str(tiny_llava_dir),
                "--model-base",
                str(tiny_llava_dir),
                "--save-model-path",
                str(tmp_path / "other"),
            ]
        )
    assert sorted(path.name for path in tmp_path.iterdir()) == ["merged"]


def test_overwrite_replaces_the_folder(merge_script, tmp_path, tiny_llava_dir, lora_run):
    out = tmp_path / "merged"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    merge_script.merge_lora(str(lora_run), str(tiny_llava_dir), str(out), dtype="bfloat16", overwrite=True)
    assert not (out / "stale.txt").exists()
    assert json.loads((out / "config.json").read_text())["dtype"] == "bfloat16"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["merged"]


def test_help_names_upstream_flags(merge_script, capsys):
    with pytest.raises(SystemExit) as exit_info:
        merge_script.main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--model-path", "--model-base", "--save-model-path", "--device", "--dtype", "--overwrite"):
        assert flag in text
