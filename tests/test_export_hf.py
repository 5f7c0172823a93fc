"""``llava.export_hf``: the exported ``LlavaForConditionalGeneration`` computes what our model computes.

Our model splices N image features at one ``<image>`` placeholder; the HF
model fills N image tokens. With the placeholder expanded to N tokens the two
sequences line up position by position, so logits compare one to one (the HF
vocabulary has one more row, the ``<image>`` token, which is left out).
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
from offline import assert_stayed_offline, offline_env

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from lora_fixture import QUESTION, prompt_inputs, train_tiny_lora  # noqa: E402

from llava.export_hf import expand_image_tokens, export  # noqa: E402

TOLERANCE = 1e-4


@pytest.fixture(scope="session")
def lora_run(tmp_path_factory, tiny_llava_dir, colour_vqa_dir) -> Path:
    return train_tiny_lora(tmp_path_factory.mktemp("lora-run"), tiny_llava_dir, colour_vqa_dir)


@pytest.fixture(scope="session")
def exported_full(tmp_path_factory, tiny_llava_dir) -> Path:
    return export(tiny_llava_dir, tmp_path_factory.mktemp("export") / "llava-tiny-hf")


@pytest.fixture(scope="session")
def exported_lora(tmp_path_factory, lora_run, tiny_llava_dir) -> Path:
    """The LoRA run exported through the command line, as users run it."""
    out = tmp_path_factory.mktemp("export-lora") / "llava-tiny-task-hf"
    sockets = out.parent / "sockets.log"
    env = offline_env(sockets, dict(os.environ, OMP_NUM_THREADS="1"))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "llava.export_hf",
            "--model-path",
            str(lora_run),
            "--model-base",
            str(tiny_llava_dir),
            "--out",
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


def _load_hf(folder: Path):
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    model = LlavaForConditionalGeneration.from_pretrained(str(folder), local_files_only=True).eval()
    return model, AutoProcessor.from_pretrained(str(folder), local_files_only=True)


def _load_ours(model_path: Path, model_base: Path | None = None):
    from llava.model.builder import load_pretrained_model

    return load_pretrained_model(
        str(model_path), str(model_base) if model_base else None, model_path.name, device="cpu"
    )[:3]


def max_logit_difference(ours_path: Path, exported: Path, model_base: Path | None = None) -> float:
    """Largest |logit| difference between our model and the export, for one image + prompt."""
    tokenizer, ours, image_processor = _load_ours(ours_path, model_base)
    hf, processor = _load_hf(exported)
    input_ids, pixel_values, image = prompt_inputs(tokenizer, image_processor, ours.config)
    hf_ids = expand_image_tokens(input_ids[0], hf.config.image_token_id, hf.config.image_seq_length)[None]
    hf_pixels = processor.image_processor([image], return_tensors="pt")["pixel_values"]
    assert torch.allclose(hf_pixels, pixel_values, atol=1e-6)  # same padding, resize, normalisation
    with torch.no_grad():
        ours_logits = ours(input_ids=input_ids, images=pixel_values).logits
        hf_logits = hf(input_ids=hf_ids, pixel_values=hf_pixels).logits
    assert hf_logits.shape[:2] == ours_logits.shape[:2]
    assert hf_logits.shape[-1] == ours_logits.shape[-1] + 1  # the <image> row
    return (hf_logits[..., : ours_logits.shape[-1]] - ours_logits).abs().max().item()


def test_full_checkpoint_logits_match(tiny_llava_dir, exported_full):
    assert max_logit_difference(tiny_llava_dir, exported_full) < TOLERANCE


def test_lora_run_exports_with_its_merged_weights(lora_run, tiny_llava_dir, exported_lora, exported_full):
    assert max_logit_difference(lora_run, exported_lora, model_base=tiny_llava_dir) < TOLERANCE
    from safetensors.torch import load_file

    tuned = load_file(str(exported_lora / "model.safetensors"))
    base = load_file(str(exported_full / "model.safetensors"))
    assert not torch.equal(
        tuned["multi_modal_projector.linear_1.weight"], base["multi_modal_projector.linear_1.weight"]
    )
    assert not torch.equal(
        tuned["language_model.model.layers.0.self_attn.q_proj.weight"],
        base["language_model.model.layers.0.self_attn.q_proj.weight"],
    )


def test_folder_loads_offline_with_every_weight_in_the_llava_hf_layout(exported_full):
    from safetensors.torch import load_file
    from transformers import LlavaForConditionalGeneration

    _, info = LlavaForConditionalGeneration.from_pretrained(
        str(exported_full), local_files_only=True, output_loading_info=True
    )
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    prefixes = (
        "language_model.model.",
        "language_model.lm_head.",
        "multi_modal_projector.",
        "vision_tower.vision_model.",
    )
    weights = load_file(str(exported_full / "model.safetensors"))
    assert all(key.startswith(prefixes) for key in weights), sorted(weights)[:5]

    config = json.loads((exported_full / "config.json").read_text())
    assert config["model_type"] == "llava" and config["vision_feature_select_strategy"] == "default"
    assert config["image_seq_length"] == 16 and config["vision_feature_layer"] == -2  # (32 / 8) ** 2 patches
    assert config["text_config"]["vocab_size"] == 513 == config["image_token_index"] + 1
    # The new <image> row starts at the mean of the others.
    embeddings = weights["language_model.model.embed_tokens.weight"]
    assert torch.allclose(embeddings[512], embeddings[:512].mean(dim=0), atol=1e-6)
    assert not [path for path in exported_full.parent.iterdir() if path.name.startswith(".")]


def test_processor_and_chat_template_reproduce_upstream_prompt_ids(tiny_llava_dir, exported_full):
    tokenizer, ours, image_processor = _load_ours(tiny_llava_dir)
    hf, processor = _load_hf(exported_full)
    assert processor.vision_feature_select_strategy == "default" and processor.patch_size == 8
    assert processor.tokenizer.padding_side == "left"
    input_ids, pixel_values, image = prompt_inputs(tokenizer, image_processor, ours.config)
    messages = [{"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": QUESTION}]}]
    encoded = processor.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
    )
    expected = expand_image_tokens(input_ids[0], hf.config.image_token_id, hf.config.image_seq_length)
    assert encoded["input_ids"][0].tolist() == expected.tolist()
    assert torch.allclose(encoded["pixel_values"], pixel_values, atol=1e-6)

    # Served generation (greedy) continues exactly as ours does.
    ours_tokens = ours.generate(input_ids, images=pixel_values, max_new_tokens=6, do_sample=False)
    hf_tokens = hf.generate(**encoded, max_new_tokens=6, do_sample=False)
    assert hf_tokens[0, encoded["input_ids"].shape[1] :].tolist() == ours_tokens[0].tolist()


def _cls_patch_copy(source: Path, destination: Path) -> Path:
    shutil.copytree(source, destination, ignore=shutil.ignore_patterns("clip-vision-tower"))
    config_path = destination / "config.json"
    config = json.loads(config_path.read_text())
    config["mm_vision_select_feature"] = "cls_patch"
    config_path.write_text(json.dumps(config))
    return destination


@pytest.mark.parametrize("variant", ["linear-projector", "cls_patch", "sharded"])
def test_other_exportable_configurations(variant, tmp_path, tiny_llava_dir):
    from llava.model.tiny import build_tiny_llava

    kwargs = {}
    if variant == "linear-projector":
        source = build_tiny_llava(tmp_path / "llava-tiny-linear", projector_type="linear")
    elif variant == "cls_patch":
        source = _cls_patch_copy(tiny_llava_dir, tmp_path / "llava-tiny-cls")
    else:
        source, kwargs = tiny_llava_dir, {"max_shard_size": "200KB"}
    out = export(source, tmp_path / "hf", **kwargs)
    assert max_logit_difference(source, out) < TOLERANCE
    config = json.loads((out / "config.json").read_text())
    if variant == "cls_patch":
        assert config["vision_feature_select_strategy"] == "full" and config["image_seq_length"] == 17
    if variant == "sharded":
        index = json.loads((out / "model.safetensors.index.json").read_text())
        assert len(set(index["weight_map"].values())) > 1


def test_dtype_is_applied_to_weights_and_config(tmp_path, tiny_llava_dir):
    from safetensors import safe_open

    out = export(tiny_llava_dir, tmp_path / "hf-bf16", dtype="bfloat16", conv_mode="none")
    with safe_open(str(out / "model.safetensors"), framework="pt") as weights:
        assert {weights.get_tensor(key).dtype for key in weights.keys()} == {torch.bfloat16}
    assert json.loads((out / "config.json").read_text())["dtype"] == "bfloat16"
    assert not (out / "chat_template.jinja").exists()


def test_unsupported_configuration_lists_every_problem(tmp_path, tiny_llava_dir):
    source = tmp_path / "llava-tiny-mmtag"
    source.mkdir()
    config = json.loads((tiny_llava_dir / "config.json").read_text())
    config.update(mm_use_im_start_end=True, mm_projector_type="mlp3x_gelu", mm_patch_merge_type="spatial_unpad")
    (source / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError) as error:
        export(source, tmp_path / "hf")
    message = str(error.value)
    assert "mm_use_im_start_end" in message and "mlp3x_gelu" in message and "spatial_unpad" in message
    assert not (tmp_path / "hf").exists()


def test_existing_output_needs_overwrite_and_is_replaced_whole(tmp_path, tiny_llava_dir):
    out = tmp_path / "hf"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    with pytest.raises(FileExistsError, match="--overwrite"):
        export(tiny_llava_dir, out)
    export(tiny_llava_dir, out, overwrite=True, conv_mode="none")
    assert not (out / "stale.txt").exists() and (out / "config.json").exists()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["hf"]


def test_failed_export_leaves_nothing_behind(tmp_path, tiny_llava_dir, monkeypatch):
    import llava.export_hf as export_hf

    def broken_write(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(export_hf, "write_safetensors", broken_write)
    with pytest.raises(OSError, match="disk full"):
        export(tiny_llava_dir, tmp_path / "hf", conv_mode="none")
    assert list(tmp_path.iterdir()) == []


def test_expand_image_tokens():
    expanded = expand_image_tokens(torch.tensor([1, 5, -200, 7]), image_token_id=512, tokens_per_image=3)
    assert expanded.tolist() == [1, 5, 512, 512, 512, 7]
