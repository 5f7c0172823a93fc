"""The flags the docs show exist: every ``python -m llava...`` / ``python scripts/...`` command in
README.md and docs/*.md uses only flags that command's ``--help`` lists (either spelling)."""

from __future__ import annotations

import concurrent.futures
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
COMMAND = re.compile(r"python3? (-m (llava[\w.]+)|(scripts/\w+\.py))")
FLAG = re.compile(r"(?<![\w-])--[a-zA-Z][\w-]*")


def documented_commands() -> dict[str, set[tuple[str, str]]]:
    """command -> {(flag, where)} for every command line in the docs (with its continuation lines)."""
    found: dict[str, set[tuple[str, str]]] = {}
    for doc in DOCS:
        lines = doc.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines):
            for match in COMMAND.finditer(line):
                command = match.group(2) or match.group(3)
                text = line[match.end() :]
                follow = number
                while text.rstrip().endswith("\\") and follow + 1 < len(lines):
                    follow += 1
                    text = text.rstrip()[:-1] + " " + lines[follow]
                text = re.split(r"\||&&|;|`|\)|#", text)[0]  # this command's own words only
                where = f"{doc.relative_to(ROOT)}:{number + 1}"
                found.setdefault(command, set()).update((flag, where) for flag in FLAG.findall(text))
    return found


def help_flags(command: str) -> set[str]:
    target = ["-m", command] if command.startswith("llava") else [str(ROOT / command)]
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1")
    result = subprocess.run([sys.executable, *target, "--help"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"{command} --help: {result.stderr[-2000:]}"
    return {flag.replace("_", "-") for flag in FLAG.findall(result.stdout)}


def test_every_documented_flag_exists():
    commands = documented_commands()
    assert len(commands) >= 15, sorted(commands)
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        known = dict(zip(commands, pool.map(help_flags, commands), strict=True))
    missing = sorted(
        f"{where}: {command} {flag}"
        for command, uses in commands.items()
        for flag, where in uses
        if flag.replace("_", "-") not in known[command]
    )
    assert not missing, "\n".join(missing)
