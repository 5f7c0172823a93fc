"""Run guards: a diverged run stops, a preempted run saves and resumes, one run per output folder.

- :class:`DivergenceGuard`: a non-finite loss or gradient norm, or the last
  ``--max_nonfinite_steps`` optimizer steps all skipped for overflow, stops the
  run with :class:`TrainingDiverged` (exit status ``EXIT_DIVERGED``) before
  anything non-finite is saved. Every rank reaches the same decision.
- :class:`PreemptionGuard`: SIGTERM / SIGINT (or the launcher going away) asks
  each worker to finish its current step; at the step's end all ranks agree, a
  complete ``checkpoint-N`` is written, and the run exits with
  ``EXIT_PREEMPTED``. The same command then resumes from that checkpoint.
- :class:`OutputDirLock`: rank 0 holds ``--output_dir/.llava-run.lock``; a
  second run on the same folder is refused at once, naming host and PID; a lock
  left by a dead process on this host is taken over.
- :func:`clean_interrupted_saves`: removes what a run killed mid-save left.

The exit statuses are documented in docs/TRAINING.md ("Exit statuses").
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import signal
import socket
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import torch
from transformers import TrainerCallback

from llava.train.checkpoint_safety import CheckpointRefused

logger = logging.getLogger("llava")

# Distinct exit statuses (docs/TRAINING.md). 75 is EX_TEMPFAIL: "try again later".
EXIT_DIVERGED = 3
EXIT_LOCKED = 4
EXIT_USAGE = 2  # a refused input (a checkpoint resume will not read), as argparse exits
EXIT_PREEMPTED = 75
LOCK_FILE = ".llava-run.lock"


class TrainingDiverged(RuntimeError):
    """The loss or the gradients stopped being finite; the message names step, loss and samples."""


class OutputDirLocked(RuntimeError):
    """Another run holds ``--output_dir``; the message names its host and PID."""


class Preempted(SystemExit):
    """Raised after the preemption checkpoint is written; exits with ``EXIT_PREEMPTED``."""

    def __init__(self) -> None:
        super().__init__(EXIT_PREEMPTED)


def _distributed() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def any_rank(flag: bool, device: torch.device | str = "cpu") -> bool:
    """True when ``flag`` is True on any rank (every rank must call this; one process: ``flag``)."""
    if not _distributed():
        return flag
    if torch.distributed.get_backend() == "nccl":
        device = torch.device("cuda", torch.cuda.current_device())
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    torch.distributed.all_reduce(value, op=torch.distributed.ReduceOp.MAX)
    return bool(value.item() > 0)


def _rank() -> int:
    return torch.distributed.get_rank() if _distributed() else 0


# ------------------------------------------------------------------ divergence


class DivergenceGuard:
    """Decides, identically on every rank, when a run has diverged.

    ``max_nonfinite_steps``: stop when this many optimizer steps in a row were
    skipped for overflow (fp16 loss scaling skips a few at the start; a run
    that skips every step is not training). Deviation from upstream: upstream
    trains on and saves non-finite weights.
    """

    def __init__(self, max_nonfinite_steps: int, output_dir: str | os.PathLike | None = None):
        if max_nonfinite_steps < 1:
            raise ValueError(f"--max_nonfinite_steps must be at least 1, got {max_nonfinite_steps}")
        self.max_nonfinite_steps = max_nonfinite_steps
        self.output_dir = output_dir
        self.skipped_in_a_row = 0
        self._losses: list[tuple[torch.Tensor, int, Sequence | None]] = []  # this step's, unread

    def check_weights(self, named_parameters, step: int, what: str) -> None:
        """Before ``what`` (a checkpoint, the final model) is saved: every trainable tensor is finite.

        Every rank checks its own (under ZeRO-3: its partition) and all agree.
        """
        bad = [
            name
            for name, param in named_parameters
            if param.requires_grad and param.numel() and not bool(torch.isfinite(param.detach()).all())
        ]
        if any_rank(bool(bad)):
            detail = f": {bad[:5]}" if bad else " (on another rank)"
            raise TrainingDiverged(
                f"trainable weights are non-finite at step {step}{detail}; {what} was not saved" + self._advice()
            )

    def check_loss(self, loss: torch.Tensor, step: int, sample_ids: Sequence | None) -> None:
        """After each micro-batch's backward: keep its loss (on the device, no sync) for :meth:`check_step`.

        Reading a loss stalls the CPU until the GPU has caught up; :meth:`check_step` reads all of a
        step's losses and its gradient norm at once, one sync and one all-reduce per optimizer step.
        """
        self._losses.append((loss.detach().reshape(()), step, sample_ids))

    def check_step(self, grad_norm: float | torch.Tensor | None, step_skipped: bool, step: int) -> None:
        """After each optimizer step, before any log or checkpoint of it (same values on every rank).

        Stops on a non-finite micro-batch loss of this step (naming its samples), a non-finite
        gradient norm, or too many skipped steps in a row.
        """
        losses, self._losses = self._losses, []
        tensors = [value.float() for value, _, _ in losses]
        norm_is_tensor = isinstance(grad_norm, torch.Tensor)
        if norm_is_tensor:
            tensors.append(
                grad_norm.detach().float().reshape(()).to(tensors[0].device if tensors else grad_norm.device)
            )
        values = torch.stack(tensors).tolist() if tensors else []  # the one sync of the step
        loss_values = values[: len(losses)]
        bad = [
            (value, at, ids)
            for value, (_, at, ids) in zip(loss_values, losses, strict=True)
            if not math.isfinite(value)
        ]
        device = losses[0][0].device if losses else "cpu"
        if any_rank(bool(bad), device):
            if bad:
                value, at, ids = bad[0]
                where = f"samples {list(ids)}" if ids is not None else "samples unknown"
                message = f"the training loss is {value} at step {at + 1} (rank {_rank()}, {where})"
            else:
                message = f"another rank's training loss is non-finite at step {step} (its log names the samples)"
            raise TrainingDiverged(message + self._advice())
        if step_skipped:
            self.skipped_in_a_row += 1
            if self.skipped_in_a_row >= self.max_nonfinite_steps:
                raise TrainingDiverged(
                    f"the last {self.skipped_in_a_row} optimizer steps (up to step {step}) were all skipped for "
                    f"overflow (non-finite gradients; --max_nonfinite_steps {self.max_nonfinite_steps})"
                    + self._advice()
                )
            return
        self.skipped_in_a_row = 0
        if grad_norm is None:
            return
        norm = values[-1] if norm_is_tensor else float(grad_norm)
        if not math.isfinite(norm):
            raise TrainingDiverged(f"the gradient norm is {norm} at step {step}" + self._advice())

    def _advice(self) -> str:
        kept = "the last complete checkpoint-N in --output_dir is kept"
        if self.output_dir is not None:
            from llava.train.checkpointing import latest_checkpoint

            latest = latest_checkpoint(str(self.output_dir))
            kept = f"the last complete checkpoint is {latest}" if latest else "no checkpoint was saved before"
        return (
            f". The run stopped before saving anything non-finite; {kept}. Lower --learning_rate "
            "(or --mm_projector_lr) and check those samples; the same command resumes from the last checkpoint."
        )


# ------------------------------------------------------------------ preemption


class PreemptionGuard(TrainerCallback):
    """Turns SIGTERM / SIGINT into "finish this step, checkpoint, exit ``EXIT_PREEMPTED``".

    ``install()`` sets the handlers; at every step end the ranks agree (one
    tiny all-reduce) whether any of them was asked to stop or lost its
    launcher (its parent process changed: the worker became an orphan).
    A second SIGINT stops at once (KeyboardInterrupt), as Ctrl-C twice should.
    Deviation from upstream: upstream dies on SIGTERM without a checkpoint.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.requested: str | None = None
        self.preempted = False
        self._parent = os.getppid()
        self._watched = _launcher_pids(self._parent)
        self._previous: dict[int, object] = {}

    def install(self) -> None:
        for number in self.SIGNALS:
            self._previous[number] = signal.signal(number, self._on_signal)

    def uninstall(self) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous.clear()

    def _on_signal(self, number: int, frame) -> None:
        name = signal.Signals(number).name
        if self.requested == "SIGINT" and number == signal.SIGINT:
            raise KeyboardInterrupt
        if self.requested is None:
            self.requested = name
            logger.warning("%s received: finishing the current step, then saving a checkpoint and exiting.", name)

    def launcher_gone(self) -> bool:
        """True when a launcher of this worker has exited (this worker would run on as an orphan).

        Watched: under a launcher (``LOCAL_RANK`` set) the parent, and under
        ``deepspeed.launcher.launch`` also the ``deepspeed`` runner above it. A plain
        ``python train.py`` watches nothing (``nohup ... &`` then logging out is fine).
        """
        if not self._watched:
            return False
        return os.getppid() != self._parent or not all(_process_alive(pid) for pid in self._watched)

    def on_step_end(self, args, state, control, **kwargs):
        local = self.requested is not None
        if not local and self.launcher_gone():
            self.requested = "launcher gone"
            logger.warning("The launcher (PID %d) has gone away: saving a checkpoint and exiting.", self._parent)
            local = True
        if any_rank(local, args.device):
            self.preempted = True
            control.should_save = True
            control.should_evaluate = False  # the grace period is for the checkpoint, not an evaluation
            control.should_training_stop = True
            logger.warning(
                "Stopping at step %d: a checkpoint is being written (reason: %s).",
                state.global_step,
                self.requested or "another rank was signalled",
            )
        return control

    def on_epoch_end(self, args, state, control, **kwargs):
        """After a preemption the loop ends mid-epoch: no end-of-epoch evaluation or second save."""
        if self.preempted:
            control.should_evaluate = False
            control.should_save = False
        return control


# ------------------------------------------------------------------ output folder


def _process_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, exited but not yet reaped, counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            state = stat.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc (not Linux): kill(0) is all we know
    return state not in ("Z", "X")


def _launcher_pids(parent: int) -> list[int]:
    """The launcher processes a worker watches: see ``PreemptionGuard.launcher_gone``."""
    if "LOCAL_RANK" not in os.environ:
        return []
    watched = [parent]
    try:
        with open(f"/proc/{parent}/cmdline", "rb") as file:
            command = file.read().replace(b"\0", b" ").decode(errors="replace")
        with open(f"/proc/{parent}/stat", encoding="ascii", errors="replace") as stat:
            grandparent = int(stat.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return watched
    if "deepspeed.launcher.launch" in command and grandparent > 1:
        watched.append(grandparent)
    return watched


class OutputDirLock:
    """One run per ``--output_dir``: an exclusive lock file naming host and PID.

    Created with ``O_EXCL`` (atomic also on NFS for this purpose); a lock from
    this host whose process is gone is stale and taken over; a lock from
    another host cannot be checked from here and is reported with how to
    remove it.
    """

    def __init__(self, output_dir: str | os.PathLike):
        self.path = Path(output_dir) / LOCK_FILE
        self.held = False

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        me = {"host": socket.gethostname(), "pid": os.getpid(), "started": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
        for _ in range(3):
            try:
                handle = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
            except FileExistsError:
                holder = self._holder()
                if holder is not None and holder.get("host") == me["host"] and not _process_alive(int(holder["pid"])):
                    logger.warning(
                        "Removing the stale lock %s of PID %s (no longer running).", self.path, holder["pid"]
                    )
                    self.path.unlink(missing_ok=True)
                    continue
                if holder is None:  # being written right now, or unreadable: look again
                    time.sleep(0.2)
                    holder = self._holder() or {"host": "?", "pid": "?", "started": "?"}
                raise OutputDirLocked(
                    f"--output_dir {self.path.parent} is in use by another run: host {holder.get('host')}, "
                    f"PID {holder.get('pid')} (since {holder.get('started')}). Wait for it to finish, use another "
                    f"--output_dir, or, if that run is dead (on another host), remove {self.path}."
                ) from None
            with os.fdopen(handle, "w") as file:
                json.dump(me, file)
            self.held = True
            return
        raise OutputDirLocked(f"could not take the lock {self.path}: it keeps reappearing")

    def _holder(self) -> dict | None:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) and "pid" in data else None

    def release(self) -> None:
        if self.held:
            holder = self._holder()
            if holder is not None and holder.get("pid") == os.getpid():
                self.path.unlink(missing_ok=True)
            self.held = False

    def __enter__(self) -> OutputDirLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def clean_interrupted_saves(output_dir: str | os.PathLike) -> list[str]:
    """Remove ``.saving-*`` folders (a final save cut short) and a stale ``.staging``; returns what went.

    Call only while holding the :class:`OutputDirLock` (nothing else writes there then).
    """
    from llava.train.checkpointing import STAGING_DIR

    folder = Path(output_dir)
    if not folder.is_dir():
        return []
    leftovers = [*folder.glob(".saving-*"), folder / STAGING_DIR]
    removed = []
    for path in leftovers:
        if path.is_dir():
            shutil.rmtree(path)
            removed.append(path.name)
    if removed:
        logger.info("Removed leftovers of an interrupted save in %s: %s", folder, ", ".join(sorted(removed)))
    return removed


@contextmanager
def output_dir_lock(output_dir: str) -> Iterator[None]:
    """Hold ``output_dir`` for this run (rank 0) and clean leftovers of an interrupted save.

    Runs before the process group exists, so the rank comes from the launcher's ``RANK``.
    """
    if int(os.environ.get("RANK", "0")) != 0:
        yield
        return
    with OutputDirLock(output_dir):
        clean_interrupted_saves(output_dir)
        yield


def run_main(train_function, **kwargs) -> None:
    """Run an entry point's ``train()`` and turn the guards' stops into their exit statuses.

    ``TrainingDiverged`` -> ``EXIT_DIVERGED`` (3), ``OutputDirLocked`` -> ``EXIT_LOCKED`` (4),
    ``CheckpointRefused`` and a user's mistake (``llava.entry.is_user_mistake``) -> 2, each
    with its message on stderr instead of a traceback; ``Preempted`` exits with ``EXIT_PREEMPTED`` (75).
    """
    import sys

    from llava.entry import quiet_known_library_notes

    quiet_known_library_notes()
    try:
        train_function(**kwargs)
    except TrainingDiverged as error:
        logger.error("Training diverged: %s", error)
        print(f"error: training diverged: {error}", file=sys.stderr)
        sys.exit(EXIT_DIVERGED)
    except OutputDirLocked as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(EXIT_LOCKED)
    except CheckpointRefused as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    except Exception as error:  # a user's mistake (bad flag, path, data): its message, no traceback
        from llava.entry import debug_requested, is_user_mistake, one_line

        if debug_requested([]) or not is_user_mistake(error):
            raise
        # one line; a long pre-flight report keeps its lines
        message = one_line(error) if len(str(error).splitlines()) <= 10 else f"error: {error}"
        print(message, file=sys.stderr)
        sys.exit(EXIT_USAGE)
