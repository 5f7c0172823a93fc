"""Where a run reports: readable logs per rank, and W&B online, offline or off (docs/TRAINING.md)."""

from __future__ import annotations

import logging
import os
import sys

logger = logging.getLogger("llava")

__all__ = ["configure_logging", "configure_reporting", "wandb_key_configured"]


def configure_logging() -> None:
    """Readable logs: INFO on each node's first process, warnings only on the others.

    Runs before the arguments are parsed (their deprecation notes are logged),
    so the rank comes from the launcher's ``LOCAL_RANK``.
    """
    import transformers

    main = int(os.environ.get("LOCAL_RANK", "0")) <= 0
    level = logging.INFO if main else logging.WARNING
    logging.basicConfig(
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        level=level,
        stream=sys.stdout,
        force=True,
    )
    logging.getLogger("llava").setLevel(level)
    transformers.utils.logging.set_verbosity(logging.WARNING if main else logging.ERROR)


def wandb_key_configured() -> bool:
    """True when W&B has an API key: ``WANDB_API_KEY`` or a ``~/.netrc`` entry (``wandb login``)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    import netrc

    try:
        entries = netrc.netrc(os.environ.get("NETRC")).hosts
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False
    host = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai").split("://")[-1].rstrip("/")
    return host in entries


def configure_reporting(training_args) -> None:
    """W&B without surprises: online with a key, else offline with one note; ``WANDB_MODE`` wins.

    Without a mode and a key, wandb would stop the run after a few seconds
    (``No API key configured``); here it logs offline instead (``wandb sync`` later).
    """
    if "wandb" not in (training_args.report_to or []):
        return
    import importlib.util

    if importlib.util.find_spec("wandb") is None:
        raise ImportError("--report_to wandb needs wandb: pip install -e '.[train]' (or pass --report_to none)")
    if os.environ.get("WANDB_MODE"):
        return
    if not wandb_key_configured():
        os.environ["WANDB_MODE"] = "offline"
        logger.info("W&B: no API key configured, logging offline to ./wandb (upload later with `wandb sync`).")
