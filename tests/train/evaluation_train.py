"""Test helper: run the real ``train()`` with evaluation between epochs, then report as JSON.

Launched like the entry point (``python ...`` or ``deepspeed --num_gpus 2 ...``) with
upstream flags, the evaluation flags and ``--report FILE``. Rank 0 writes the
Trainer's ``log_history``, ``best_metric`` and ``best_model_checkpoint``.
``--scripted-fractions 0.5,1,0`` replaces generation by answers of known
accuracy (evaluation k gets the first fraction k of the questions right).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from llava.train.evaluation import (  # noqa: E402
    LLaVAEvaluator,
)
from llava.train.train import train  # noqa: E402


def script_predictions(fractions: list[float]) -> None:
    """Evaluation k answers the first ``fractions[k]`` of the questions right, the rest wrong.

    Makes the accuracy of each evaluation known in advance, for the best-checkpoint test
    (a tiny model learns nothing in a few steps); loss and files stay real.
    """
    calls = []

    def predict(self, model):
        fraction = fractions[min(len(calls), len(fractions) - 1)]
        calls.append(fraction)
        right = round(fraction * len(self.items))
        return [item.answers[0] if index < right else "wrong" for index, item in enumerate(self.items)]

    LLaVAEvaluator.predict = predict


def _take(argv: list[str], flag: str) -> str | None:
    if flag not in argv:
        return None
    index = argv.index(flag)
    value = argv[index + 1]
    del argv[index : index + 2]
    return value


def main() -> None:
    argv = sys.argv[1:]
    report_path = Path(_take(argv, "--report"))
    fractions = _take(argv, "--scripted-fractions")
    if fractions:
        script_predictions([float(value) for value in fractions.split(",")])
    trainer = train(argv=argv)
    if trainer.args.process_index == 0:
        report = {
            "log_history": trainer.state.log_history,
            "best_metric": trainer.state.best_metric,
            "best_model_checkpoint": trainer.state.best_model_checkpoint,
            "best_global_step": trainer.state.best_global_step,
            "world_size": trainer.args.world_size,
        }
        report_path.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
