"""Run guards (llava/train/guards.py): divergence stops the run, SIGTERM saves and resumes,
one run per output folder. Real training processes and real signals; the DeepSpeed ones
run two processes under ZeRO-2 on the CPU."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from launch import ROOT, deepspeed_command, recipe_flags
from safetensors.torch import load_file

from llava.train.checkpointing import NON_LORA_FILE, STAGING_DIR, latest_checkpoint
from llava.train.guards import (
    EXIT_DIVERGED,
    EXIT_LOCKED,
    EXIT_PREEMPTED,
    LOCK_FILE,
    DivergenceGuard,
    OutputDirLock,
    OutputDirLocked,
    PreemptionGuard,
    TrainingDiverged,
    clean_interrupted_saves,
)

ENV = dict(os.environ, OMP_NUM_THREADS="1", WANDB_MODE="disabled", TOKENIZERS_PARALLELISM="false")
TRAIN = [sys.executable, "-m", "llava.train.train"]


# ----------------------------------------------------------------------------- units


def test_divergence_guard_decisions():
    guard = DivergenceGuard(max_nonfinite_steps=2)
    guard.check_loss(torch.tensor(1.5), step=0, sample_ids=["a"])
    guard.check_step(torch.tensor(0.5), step_skipped=False, step=1)
    # Losses are read once per optimizer step: the bad micro-batch of the step is named.
    guard.check_loss(torch.tensor(2.0), step=4, sample_ids=["q0"])
    guard.check_loss(torch.tensor(float("nan")), step=4, sample_ids=["q1", "q2"])
    with pytest.raises(TrainingDiverged, match=r"loss is nan at step 5 \(rank 0, samples \['q1', 'q2'\]\)"):
        guard.check_step(torch.tensor(0.5), step_skipped=True, step=5)  # before the skipped-step count
    with pytest.raises(TrainingDiverged, match="gradient norm is inf at step 7"):
        guard.check_step(torch.tensor(float("inf")), step_skipped=False, step=7)
    guard.check_step(float("nan"), step_skipped=True, step=8)  # one skipped step (fp16 loss scaling) is fine
    guard.check_step(1.0, step_skipped=False, step=9)  # and the count starts again
    guard.check_step(None, step_skipped=True, step=10)
    with pytest.raises(TrainingDiverged, match="last 2 optimizer steps .up to step 11. were all skipped"):
        guard.check_step(None, step_skipped=True, step=11)
    weights = [
        ("lora_A", torch.nn.Parameter(torch.tensor([1.0, float("inf")]))),
        ("frozen", torch.nn.Parameter(torch.tensor([float("nan")]), requires_grad=False)),
    ]
    with pytest.raises(TrainingDiverged, match=r"non-finite at step 3: \['lora_A'\]; checkpoint-3 was not saved"):
        guard.check_weights(weights, 3, "checkpoint-3")
    guard.check_weights(weights[1:], 3, "checkpoint-3")  # frozen tensors are not the run's output
    with pytest.raises(ValueError):
        DivergenceGuard(0)


def test_divergence_message_names_the_last_checkpoint(tmp_path):
    (tmp_path / "checkpoint-4").mkdir()
    (tmp_path / "checkpoint-4" / "trainer_state.json").write_text("{}")
    with pytest.raises(TrainingDiverged, match="the last complete checkpoint is .*checkpoint-4"):
        DivergenceGuard(1, tmp_path).check_step(float("nan"), step_skipped=False, step=6)


def test_lock_refuses_a_second_run_and_takes_over_a_dead_ones(tmp_path):
    with OutputDirLock(tmp_path / "run") as lock:
        holder = json.loads(lock.path.read_text())
        assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
        with pytest.raises(OutputDirLocked) as refused:
            OutputDirLock(tmp_path / "run").acquire()
        assert f"host {socket.gethostname()}, PID {os.getpid()}" in str(refused.value)
    assert not (tmp_path / "run" / LOCK_FILE).exists()  # released

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / "run" / LOCK_FILE).write_text(json.dumps({"host": socket.gethostname(), "pid": dead.pid}))
    with OutputDirLock(tmp_path / "run"):  # stale: taken over
        assert json.loads((tmp_path / "run" / LOCK_FILE).read_text())["pid"] == os.getpid()

    (tmp_path / "run" / LOCK_FILE).write_text(json.dumps({"host": "gpu-node-7", "pid": 4242, "started": "x"}))
    with pytest.raises(OutputDirLocked, match="host gpu-node-7, PID 4242"):
        OutputDirLock(tmp_path / "run").acquire()  # another host: cannot tell, so refuse and say how


def test_leftovers_of_an_interrupted_save_are_removed(tmp_path):
    (tmp_path / ".saving-abc123").mkdir()
    (tmp_path / ".saving-abc123" / "adapter_model.safetensors").write_bytes(b"torn")
    (tmp_path / STAGING_DIR / "checkpoint-8").mkdir(parents=True)
    (tmp_path / "checkpoint-4").mkdir()
    assert clean_interrupted_saves(tmp_path) == [".saving-abc123", STAGING_DIR]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-4"]
    assert clean_interrupted_saves(tmp_path / "missing") == []


def test_sigterm_sets_the_flag_and_a_second_sigint_interrupts():
    guard = PreemptionGuard()
    guard.install()
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGTERM)  # the launcher forwards it again: still just a request
        assert guard.requested == "SIGTERM"
    finally:
        guard.uninstall()
    guard = PreemptionGuard()
    guard.install()
    try:
        os.kill(os.getpid(), signal.SIGINT)
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    finally:
        guard.uninstall()
    assert signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, signal.default_int_handler) or callable(
        signal.getsignal(signal.SIGTERM)
    )


def test_a_preempted_step_saves_without_evaluating_and_the_cut_epoch_neither(tmp_path):
    from transformers import TrainerControl, TrainerState

    guard = PreemptionGuard()
    args = SimpleNamespace(device=torch.device("cpu"))
    control = TrainerControl(should_evaluate=True)
    guard.on_step_end(args, TrainerState(global_step=5), control)
    assert not guard.preempted and control.should_evaluate and not control.should_save
    guard.requested = "SIGTERM"
    guard.on_step_end(args, TrainerState(global_step=6), control)
    assert guard.preempted and control.should_save and control.should_training_stop and not control.should_evaluate
    end = TrainerControl(should_evaluate=True, should_save=True)  # what --eval/save_strategy epoch would ask
    guard.on_epoch_end(args, TrainerState(global_step=6), end)
    assert not end.should_evaluate and not end.should_save


def test_a_plain_process_watches_no_launcher(monkeypatch):
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    assert not PreemptionGuard().launcher_gone()  # nohup python train.py & and logging out is fine


# ------------------------------------------------------------------ real processes


class Run:
    """A training command in its own process group, its output collected line by line."""

    def __init__(self, command: list[str]):
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for_steps(self, steps: int, timeout: float = 300) -> None:
        """Until the run has logged ``steps`` training losses."""
        deadline = time.monotonic() + timeout
        while self.output.count("'loss'") < steps:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the run ended or stalled before step {steps}:\n{self.output[-4000:]}")
            time.sleep(0.05)

    def wait_group_gone(self, timeout: float = 300) -> int:
        """Until every process of the group has exited (workers may outlive the runner); the runner's status."""
        status = self.process.wait(timeout=timeout)
        deadline = time.monotonic() + timeout
        while True:
            try:
                os.killpg(self.process.pid, 0)
            except ProcessLookupError:
                break
            if time.monotonic() > deadline:
                os.killpg(self.process.pid, signal.SIGKILL)
                raise AssertionError("processes of the run outlived it:\n" + self.output[-4000:])
            time.sleep(0.2)
        self.reader.join(timeout=10)
        return status


def run_to_end(command: list[str]) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return result


def final_weights(output_dir: Path) -> dict[str, torch.Tensor]:
    adapter = load_file(str(output_dir / "adapter_model.safetensors"))
    return {**adapter, **torch.load(output_dir / NON_LORA_FILE, weights_only=True)}


def assert_same_weights(reference: Path, resumed: Path) -> None:
    a, b = final_weights(reference), final_weights(resumed)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-5, rtol=1e-5, msg=key)


def test_a_diverged_run_stops_with_status_3_naming_step_loss_and_samples(tiny_llava_dir, colour_vqa_dir, tmp_path):
    output = tmp_path / "diverged-lora"
    flags = recipe_flags(
        tiny_llava_dir,
        colour_vqa_dir,
        output,
        epochs=1,
        learning_rate="1e20",
        mm_projector_lr="1e20",
        save_strategy="steps",
    ) + ["--save_steps", "2"]
    result = subprocess.run([*TRAIN, *flags], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)
    assert result.returncode == EXIT_DIVERGED, result.stdout[-3000:] + result.stderr[-3000:]
    assert "error: training diverged: the training loss is nan at step 3 (rank 0, samples ['" in result.stderr
    assert f"the last complete checkpoint is {output / 'checkpoint-2'}" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (output / "adapter_model.safetensors").exists()  # no final output
    assert sorted(p.name for p in output.iterdir()) == ["checkpoint-2", "eval"]  # lock released, nothing half-saved
    assert [p.name for p in (output / "eval").iterdir()] == ["run.json"]  # written at set-up
    saved = load_file(str(output / "checkpoint-2" / "adapter_model.safetensors"))
    assert all(torch.isfinite(tensor).all() for tensor in saved.values())


def test_sigterm_saves_a_checkpoint_exits_75_and_the_same_command_resumes(tiny_llava_dir, colour_vqa_dir, tmp_path):
    output = tmp_path / "preempted-lora"
    command = [*TRAIN, *recipe_flags(tiny_llava_dir, colour_vqa_dir, output, epochs=2)]  # save_strategy no
    run = Run(command)
    run.wait_for_steps(3)
    os.killpg(run.process.pid, signal.SIGTERM)
    status = run.wait_group_gone()
    assert status == EXIT_PREEMPTED, run.output[-3000:]
    assert "SIGTERM received: finishing the current step" in run.output
    checkpoint = latest_checkpoint(str(output))
    assert checkpoint is not None, run.output[-3000:]
    step = int(checkpoint.rsplit("-", 1)[1])
    assert step >= 3 and f"Preempted: checkpoint-{step} is saved" in run.output
    assert not (output / "adapter_model.safetensors").exists() and not (output / LOCK_FILE).exists()

    result = run_to_end(command)
    assert f"Resuming from {checkpoint}" in result.stdout + result.stderr
    assert (output / "adapter_model.safetensors").exists()


def test_a_second_run_on_a_held_output_dir_is_refused_at_once(tiny_llava_dir, colour_vqa_dir, tmp_path):
    output = tmp_path / "busy-lora"
    output.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        (output / LOCK_FILE).write_text(
            json.dumps({"host": socket.gethostname(), "pid": holder.pid, "started": "earlier"})
        )
        started = time.monotonic()
        result = subprocess.run(
            [*TRAIN, *recipe_flags(tiny_llava_dir, colour_vqa_dir, output, epochs=1)],
            cwd=ROOT,
            env=ENV,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == EXIT_LOCKED, result.stderr[-3000:]
        assert f"host {socket.gethostname()}, PID {holder.pid}" in result.stderr
        assert "Loading weights" not in result.stdout + result.stderr  # refused before any model loads
        assert time.monotonic() - started < 60
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.slow
def test_sigterm_to_the_process_group_under_zero2_resumes_to_the_same_weights(tiny_llava_dir, colour_vqa_dir, tmp_path):
    def command(output: Path) -> list[str]:
        launcher = deepspeed_command(2, "zero2.json")
        launcher.remove(str(ROOT / "tests" / "train" / "fingerprint_train.py"))
        launcher.insert(5, str(ROOT / "llava" / "train" / "train.py"))
        return [*launcher, *recipe_flags(tiny_llava_dir, colour_vqa_dir, output, epochs=2)]

    reference = tmp_path / "reference-lora"
    run_to_end(command(reference))

    interrupted = tmp_path / "interrupted-lora"
    run = Run(command(interrupted))
    run.wait_for_steps(3)  # mid-epoch 1 (7 steps an epoch)
    os.killpg(run.process.pid, signal.SIGTERM)
    run.wait_group_gone()  # runner, launcher and both workers are gone
    checkpoint = latest_checkpoint(str(interrupted))
    assert checkpoint is not None, run.output[-4000:]
    assert "Preempted: checkpoint-" in run.output, run.output[-4000:]
    assert not (interrupted / "adapter_model.safetensors").exists()

    result = run_to_end(command(interrupted))
    assert f"Resuming from {checkpoint}" in result.stdout + result.stderr
    assert_same_weights(reference, interrupted)


@pytest.mark.slow
def test_workers_whose_launcher_died_checkpoint_and_stop(tiny_llava_dir, colour_vqa_dir, tmp_path):
    output = tmp_path / "orphaned-lora"
    launcher = deepspeed_command(1, "zero2.json")
    launcher.remove(str(ROOT / "tests" / "train" / "fingerprint_train.py"))
    launcher.insert(5, str(ROOT / "llava" / "train" / "train.py"))
    run = Run([*launcher, *recipe_flags(tiny_llava_dir, colour_vqa_dir, output, epochs=2)])
    run.wait_for_steps(3)
    os.kill(run.process.pid, signal.SIGTERM)  # the deepspeed runner alone: it dies without passing it on
    run.wait_group_gone()
    assert "The launcher (PID" in run.output and latest_checkpoint(str(output)) is not None, run.output[-4000:]


@pytest.mark.slow
def test_a_diverged_zero2_run_stops_every_rank_with_status_3(tiny_llava_dir, colour_vqa_dir, tmp_path):
    output = tmp_path / "diverged-zero2-lora"
    launcher = deepspeed_command(2, "zero2.json")
    launcher.remove(str(ROOT / "tests" / "train" / "fingerprint_train.py"))
    launcher.insert(5, str(ROOT / "llava" / "train" / "train.py"))
    flags = recipe_flags(tiny_llava_dir, colour_vqa_dir, output, epochs=1, learning_rate="1e20", mm_projector_lr="1e20")
    result = subprocess.run([*launcher, *flags], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)
    assert result.returncode == EXIT_DIVERGED, result.stdout[-3000:] + result.stderr[-3000:]
    assert "error: training diverged:" in result.stderr
    assert not (output / "adapter_model.safetensors").exists()
