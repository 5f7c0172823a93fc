"""Where a training step's time goes: data wait, vision tower, LM forward, backward, optimizer.

``scripts/benchmark.py`` adds :class:`StepPhases` to a real run (``train(callbacks=[...])``)
and prints its split under the throughput table.
"""

from __future__ import annotations

import math
import statistics
import time

import torch
from transformers import TrainerCallback


class StepPhases(TrainerCallback):
    """Where a step's time goes, measured on the steps from ``first_step`` on (callbacks and hooks).

    data wait: the previous step's end to this step's begin (the Trainer fetches the batch
    there); vision tower: the CLIP forward; LM forward: the rest of the model's forward;
    backward: the forward's end to the optimizer step (the loss, the backward, clipping; under
    DeepSpeed also its optimizer step, which runs inside the backward call); optimizer: the
    optimizer step; other: the remainder (scheduler, logging, the run guards). Each boundary
    waits for the GPU, so these steps are not in the headline median.
    """

    PHASES = ("data wait", "vision tower", "LM forward", "backward", "optimizer", "other")

    def __init__(self, first_step: int = 0):
        self.first_step = first_step
        self.steps: list[dict[str, float]] = []
        self.active = False
        self.marks: dict[str, float] = {}
        self.tower_s = 0.0
        self._previous_end: float | None = None

    @staticmethod
    def _now() -> float:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        return time.perf_counter()

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        tower = base.get_vision_tower() if hasattr(base, "get_vision_tower") else None
        model.register_forward_pre_hook(lambda *_: self._mark("forward_start"))
        model.register_forward_hook(lambda *_: self._mark("forward_end"))
        if tower is not None:
            tower.register_forward_pre_hook(lambda *_: self._mark("tower_start"))
            tower.register_forward_hook(lambda *_: self._tower_done())

    def _mark(self, name: str) -> None:
        if self.active and name not in self.marks:
            self.marks[name] = self._now()

    def _tower_done(self) -> None:
        if self.active and "tower_start" in self.marks:
            self.tower_s += self._now() - self.marks.pop("tower_start")

    def on_step_begin(self, args, state, control, **kwargs):
        self.active = state.global_step >= self.first_step
        if self.active:
            self.marks, self.tower_s = {"begin": self._now()}, 0.0

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        self._mark("pre_optimizer")

    def on_optimizer_step(self, args, state, control, **kwargs):
        self._mark("optimizer_end")

    def on_step_end(self, args, state, control, **kwargs):
        if not self.active:
            self._previous_end = None
            return
        end = self._now()
        m = self.marks
        forward_start, forward_end = m.get("forward_start", m["begin"]), m.get("forward_end", m["begin"])
        pre_optimizer = m.get("pre_optimizer", end)
        optimizer_end = m.get("optimizer_end", pre_optimizer)
        self.steps.append(
            {
                "data wait": m["begin"] - self._previous_end if self._previous_end is not None else float("nan"),
                "vision tower": self.tower_s,
                "LM forward": forward_end - forward_start - self.tower_s,
                "backward": pre_optimizer - forward_end,
                "optimizer": optimizer_end - pre_optimizer,
                "other": (forward_start - m["begin"]) + (end - optimizer_end),
            }
        )
        self._previous_end = end
        self.active = False

    def medians_ms(self) -> dict[str, float]:
        """Median milliseconds of each phase over the measured steps (empty when none were)."""
        result = {}
        for phase in self.PHASES:
            values = [step[phase] * 1000 for step in self.steps if not math.isnan(step[phase])]
            if values:
                result[phase] = statistics.median(values)
        return result

    def format(self) -> str:
        medians = self.medians_ms()
        if not medians:
            return "(no phase split: --phase-steps 0)"
        total = sum(medians.values()) or 1.0
        lines = [f"| phase (median of {len(self.steps)} synchronised steps) | ms | share |"]
        lines += [f"| {phase:<42} | {value:8.1f} | {value / total:5.0%} |" for phase, value in medians.items()]
        return "\n".join(lines)
