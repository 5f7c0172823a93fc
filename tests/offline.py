"""Test helper: run the project's commands as on a GPU node without network.

``offline_env(log)`` is an environment with ``HF_HUB_OFFLINE=1`` and the socket guard of
``tests/offline_guard`` loaded into every Python process; ``assert_stayed_offline(log)``
fails, listing each attempt, when any of them tried to reach another host.
"""

from __future__ import annotations

import os
from pathlib import Path

GUARD = Path(__file__).resolve().with_name("offline_guard")


def offline_env(log: str | os.PathLike, base: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    env["PYTHONPATH"] = os.pathsep.join(part for part in (str(GUARD), env.get("PYTHONPATH", "")) if part)
    env["HF_HUB_OFFLINE"] = "1"
    env["LLAVA_SOCKET_GUARD_LOG"] = str(log)
    return env


def assert_stayed_offline(log: str | os.PathLike) -> None:
    path = Path(log)
    assert not path.exists(), f"tried to reach the network:\n{path.read_text()}"
