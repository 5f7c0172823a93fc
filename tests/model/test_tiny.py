"""The tiny model factory: upstream layout, determinism, command line."""

from __future__ import annotations

import json

from safetensors.torch import load_file

from llava.model.tiny import build_tiny_llava, main


def test_layout_matches_an_upstream_llava_checkpoint(tiny_llava_dir):
    files = {path.name for path in tiny_llava_dir.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.model", "tokenizer_config.json"} <= files
    config = json.loads((tiny_llava_dir / "config.json").read_text())
    assert config["model_type"] == "llava_llama"
    assert config["architectures"] == ["LlavaLlamaForCausalLM"]
    for key in (
        "mm_vision_tower",
        "mm_hidden_size",
        "mm_projector_type",
        "mm_vision_select_layer",
        "mm_vision_select_feature",
        "mm_patch_merge_type",
        "use_mm_proj",
        "mm_use_im_start_end",
        "mm_use_im_patch_token",
        "image_aspect_ratio",
        "tokenizer_padding_side",
        "tokenizer_model_max_length",
        "tune_mm_mlp_adapter",
        "freeze_mm_mlp_adapter",
        "mm_projector_lr",
    ):
        assert key in config, key
    tower = tiny_llava_dir / config["mm_vision_tower"]
    assert (tower / "preprocessor_config.json").exists() and (tower / "model.safetensors").exists()
    weights = load_file(str(tiny_llava_dir / "model.safetensors"))
    assert "model.mm_projector.0.weight" in weights
    assert not any(key.startswith("model.vision_tower") for key in weights)


def test_same_seed_gives_identical_weights(tmp_path):
    first = build_tiny_llava(tmp_path / "a")
    second = build_tiny_llava(tmp_path / "b")
    a, b = load_file(str(first / "model.safetensors")), load_file(str(second / "model.safetensors"))
    assert a.keys() == b.keys() and all(a[k].equal(b[k]) for k in a)
    assert (first / "tokenizer.model").read_bytes() == (second / "tokenizer.model").read_bytes()


def test_command_line(tmp_path, capsys):
    main(["--out", str(tmp_path / "m"), "--projector-type", "linear"])
    assert "wrote tiny LLaVA" in capsys.readouterr().out
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["mm_projector_type"] == "linear"
