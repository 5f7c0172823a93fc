"""W&B without surprises: online with a key, offline without one, WANDB_MODE respected."""

from __future__ import annotations

import types

import pytest

from llava.train.reporting import configure_reporting, wandb_key_configured


@pytest.fixture()
def clean_env(monkeypatch, tmp_path):
    for name in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    return monkeypatch


def args(*report_to):
    return types.SimpleNamespace(report_to=list(report_to))


def test_no_key_means_offline_with_one_note(clean_env, caplog):
    import logging
    import os

    with caplog.at_level(logging.INFO, logger="llava"):
        configure_reporting(args("wandb"))
    assert os.environ["WANDB_MODE"] == "offline"
    assert "logging offline" in caplog.text


def test_explicit_mode_is_respected(clean_env):
    import os

    clean_env.setenv("WANDB_MODE", "disabled")
    configure_reporting(args("wandb"))
    assert os.environ["WANDB_MODE"] == "disabled"


def test_key_in_env_or_netrc_stays_online(clean_env, tmp_path):
    import os

    clean_env.setenv("WANDB_API_KEY", "x" * 40)
    configure_reporting(args("wandb"))
    assert "WANDB_MODE" not in os.environ
    clean_env.delenv("WANDB_API_KEY")
    (tmp_path / "netrc").write_text("machine api.wandb.ai\n  login user\n  password " + "y" * 40 + "\n")
    assert wandb_key_configured()


def test_other_reporters_untouched(clean_env):
    import os

    configure_reporting(args("none"))
    assert "WANDB_MODE" not in os.environ
