"""``adapter_config.json`` that upstream's peft 0.10.0 loads: only its fields, unportable settings refused."""

from __future__ import annotations

import dataclasses
import json

import pytest
from lora_fixture import train_tiny_lora

from llava.model.peft_compat import (
    PEFT_0_10_LORA_FIELDS,
    AdapterConfigError,
    check_lora_config,
    make_adapter_config_portable,
    portable_adapter_config,
)

# Test data: the fields of peft 0.10.0's LoraConfig, read from that release's
# peft/tuners/lora/config.py (LoraConfig) and peft/config.py (PeftConfig, PeftConfigMixin).
PEFT_0_10_0_LORA_CONFIG_FIELDS = (
    "peft_type",
    "auto_mapping",
    "base_model_name_or_path",
    "revision",
    "task_type",
    "inference_mode",
    "r",
    "target_modules",
    "lora_alpha",
    "lora_dropout",
    "fan_in_fan_out",
    "bias",
    "use_rslora",
    "modules_to_save",
    "init_lora_weights",
    "layers_to_transform",
    "layers_pattern",
    "rank_pattern",
    "alpha_pattern",
    "megatron_config",
    "megatron_core",
    "loftq_config",
    "use_dora",
    "layer_replication",
)
# peft 0.10.0 builds its config as LoraConfig(**json): a stand-in with exactly its fields.
OldLoraConfig = dataclasses.make_dataclass(
    "OldLoraConfig", [(name, object, None) for name in PEFT_0_10_0_LORA_CONFIG_FIELDS]
)


@pytest.fixture(scope="module")
def lora_run(tiny_llava_dir, colour_vqa_dir, tmp_path_factory):
    return train_tiny_lora(tmp_path_factory.mktemp("lora"), tiny_llava_dir, colour_vqa_dir)


def test_field_list_is_peft_0_10_0s():
    assert set(PEFT_0_10_0_LORA_CONFIG_FIELDS) == PEFT_0_10_LORA_FIELDS


def test_a_training_run_saves_a_config_old_and_new_peft_load(lora_run):
    from peft import LoraConfig, PeftConfig

    saved = json.loads((lora_run / "adapter_config.json").read_text())
    assert set(saved) <= set(PEFT_0_10_0_LORA_CONFIG_FIELDS), set(saved) - set(PEFT_0_10_0_LORA_CONFIG_FIELDS)
    old = OldLoraConfig(**saved)  # the TypeError peft 0.10.0 raised before
    assert (old.r, old.lora_alpha, old.peft_type, old.task_type) == (8, 16, "LORA", "CAUSAL_LM")
    new = PeftConfig.from_pretrained(str(lora_run))
    assert isinstance(new, LoraConfig) and new.r == 8 and set(new.target_modules) == set(saved["target_modules"])


def test_newer_fields_at_their_defaults_are_dropped():
    from peft import LoraConfig

    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj"], task_type="CAUSAL_LM").to_dict()
    assert {"alora_invocation_tokens", "lora_bias", "target_parameters"} <= set(config)
    portable = portable_adapter_config(config)
    assert set(portable) <= PEFT_0_10_LORA_FIELDS
    assert portable["r"] == 4 and portable["target_modules"] == ["q_proj"]


def test_settings_old_peft_cannot_express_are_refused_all_at_once(tmp_path):
    from peft import LoraConfig

    config = LoraConfig(r=4, target_modules=["q_proj"], lora_bias=True, exclude_modules=["lm_head"])
    with pytest.raises(AdapterConfigError, match=r"lora_bias=True.*exclude_modules|exclude_modules.*lora_bias=True"):
        check_lora_config(config)
    saved = {key: sorted(value) if isinstance(value, set) else value for key, value in config.to_dict().items()}
    saved["init_lora_weights"] = "pissa"
    (tmp_path / "adapter_config.json").write_text(json.dumps(saved))
    with pytest.raises(AdapterConfigError, match=r"adapter_config.json.*init_lora_weights='pissa'"):
        make_adapter_config_portable(tmp_path)
    assert json.loads((tmp_path / "adapter_config.json").read_text())["lora_bias"] is True  # left untouched


def test_rewrite_in_place_keeps_every_old_field(tmp_path):
    from peft import LoraConfig

    config = LoraConfig(
        r=4,
        lora_alpha=32,
        lora_dropout=0.1,
        target_modules=["q_proj", "v_proj"],
        bias="lora_only",
        task_type="CAUSAL_LM",
    ).to_dict()
    config["target_modules"] = sorted(config["target_modules"])
    (tmp_path / "adapter_config.json").write_text(json.dumps(config))
    make_adapter_config_portable(tmp_path)
    written = json.loads((tmp_path / "adapter_config.json").read_text())
    assert written == {key: value for key, value in config.items() if key in PEFT_0_10_LORA_FIELDS}
