"""Test helper for the gpu tests: run the real ``train()`` and print where it ran and its losses.

Launched like the entry point (``python ...`` or ``deepspeed --num_gpus 1 ...``) with upstream's
flags plus ``--report FILE``; rank 0 writes ``{"device", "losses", "dtype"}`` there as JSON.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from llava.train.train import train  # noqa: E402


def main() -> None:
    argv = sys.argv[1:]
    index = argv.index("--report")
    report = Path(argv[index + 1])
    del argv[index : index + 2]
    trainer = train(argv=argv)
    if int(os.environ.get("RANK", "0")) == 0:
        parameter = next(p for p in trainer.model.parameters() if p.requires_grad)
        losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
        report.write_text(
            json.dumps({"device": str(parameter.device), "dtype": str(parameter.dtype), "losses": losses})
        )


if __name__ == "__main__":
    main()
