"""``LLaVATrainer``: the transformers Trainer with LLaVA's three additions.

1. ``--group_by_modality_length``: batches hold only image samples or only
   text samples, each grouped by length (``LengthGroupedSampler``).
2. ``--mm_projector_lr``: the projector gets its own learning rate (two extra
   optimizer groups, with and without weight decay).
3. Checkpoints a loader can use: a projector-only run (``--tune_mm_mlp_adapter``)
   saves ``mm_projector.bin``; a LoRA run's ``checkpoint-N`` also gets
   ``non_lora_trainables.bin`` and ``config.json`` (upstream's lack them).
"""

from __future__ import annotations

import logging
import os
import shutil

import torch
from torch.utils.data import Sampler
from transformers import Trainer
from transformers.trainer import rotate_checkpoints

from llava.train import checkpointing
from llava.train.fronts import get_mm_adapter_state_maybe_zero_3, maybe_zero_3  # noqa: F401 (upstream's names here too)
from llava.train.guards import DivergenceGuard

logger = logging.getLogger("llava")


def _split_even(indices: list[int], lengths: list[int], chunks: int) -> list[list[int]]:
    """Deal ``indices`` into ``chunks`` lists of equal size, balancing total length."""
    if len(indices) % chunks:
        return [indices[i::chunks] for i in range(chunks)]
    per_chunk = len(indices) // chunks
    result: list[list[int]] = [[] for _ in range(chunks)]
    totals = [0] * chunks
    for index in indices:
        open_chunks = [c for c in range(chunks) if len(result[c]) < per_chunk]
        target = min(open_chunks, key=lambda c: totals[c])
        result[target].append(index)
        totals[target] += lengths[index]
    return result


def length_grouped_indices(lengths, batch_size: int, world_size: int, generator=None) -> list[int]:
    """Random order in which each mega-batch (``batch_size * world_size``) is sorted by length."""
    order = torch.randperm(len(lengths), generator=generator).tolist()
    mega = batch_size * world_size
    result = []
    for start in range(0, len(order), mega):
        block = sorted(order[start : start + mega], key=lambda i: lengths[i], reverse=True)
        for chunk in _split_even(block, lengths, world_size):
            result.extend(chunk)
    return result


def modality_length_grouped_indices(lengths, batch_size: int, world_size: int, generator=None) -> list[int]:
    """Like ``length_grouped_indices``, but no mega-batch mixes image (>0) and text (<0) samples.

    Full mega-batches of both kinds are shuffled together; the two partial
    remainders form the last mega-batch.
    """
    if all(length > 0 for length in lengths) or all(length < 0 for length in lengths):
        return length_grouped_indices([abs(x) for x in lengths], batch_size, world_size, generator)
    image_ids = [i for i, length in enumerate(lengths) if length > 0]
    text_ids = [i for i, length in enumerate(lengths) if length < 0]
    absolute = [abs(x) for x in lengths]
    mega = batch_size * world_size
    blocks, remainder = [], []
    for ids in (image_ids, text_ids):
        local = length_grouped_indices([absolute[i] for i in ids], batch_size, world_size, generator)
        ordered = [ids[i] for i in local]
        full = len(ordered) - len(ordered) % mega
        blocks += [ordered[i : i + mega] for i in range(0, full, mega)]
        remainder += ordered[full:]
    shuffled = [blocks[i] for i in torch.randperm(len(blocks), generator=generator).tolist()]
    if remainder:
        shuffled.append(sorted(remainder, key=lambda i: absolute[i], reverse=True))
    return [i for block in shuffled for i in block]


# Upstream's names for the three functions above (same parameters and results).


def split_to_even_chunks(indices: list[int], lengths: list[int], num_chunks: int) -> list[list[int]]:
    """Upstream's name for ``_split_even``."""
    return _split_even(indices, lengths, num_chunks)


def get_length_grouped_indices(
    lengths, batch_size: int, world_size: int, generator=None, merge: bool = True
) -> list[int]:
    """Upstream's name for ``length_grouped_indices`` (``merge`` is accepted; upstream always flattens)."""
    return length_grouped_indices(lengths, batch_size, world_size, generator)


def get_modality_length_grouped_indices(lengths, batch_size: int, world_size: int, generator=None) -> list[int]:
    """Upstream's name for ``modality_length_grouped_indices``."""
    return modality_length_grouped_indices(lengths, batch_size, world_size, generator)


class LengthGroupedSampler(Sampler):
    """Samples indices grouped by length (and, optionally, by modality).

    The order depends only on ``seed`` and the epoch (``set_epoch``, which the
    Trainer calls), so a resumed run sees exactly the batches an uninterrupted
    run would. Deviation from upstream: upstream draws from the global RNG,
    whose state on resume differs from an uninterrupted run's.
    """

    def __init__(
        self,
        batch_size: int,
        world_size: int,
        lengths=None,
        generator=None,
        variable_length: bool = False,
        group_by_modality: bool = False,
        seed: int = 0,
    ):
        if lengths is None:
            raise ValueError("LengthGroupedSampler needs the per-sample lengths.")
        self.batch_size = batch_size
        self.world_size = world_size
        self.lengths = list(lengths)
        self.generator = generator
        self.group_by_modality = group_by_modality
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self):
        grouping = modality_length_grouped_indices if self.group_by_modality else length_grouped_indices
        lengths = self.lengths if self.group_by_modality else [abs(x) for x in self.lengths]
        generator = self.generator
        if generator is None:
            generator = torch.Generator().manual_seed(self.seed + self.epoch)
        return iter(grouping(lengths, self.batch_size, self.world_size, generator))


class LLaVATrainer(Trainer):
    """The Trainer with LLaVA's sampler, optimizer groups, guarded steps and staged checkpoints.

    ``divergence_guard``: stops a diverged run (None: no checks).
    """

    def __init__(
        self,
        *args,
        divergence_guard: DivergenceGuard | None = None,
        # [patch 0001-eval-between-epochs]
        evaluator=None,
        # [/patch 0001-eval-between-epochs]
        **kwargs,
    ):
        # [patch 0001-eval-between-epochs]
        # evaluator: a llava.train.evaluation.LLaVAEvaluator; its validation set is the eval dataset.
        if evaluator is not None and kwargs.get("eval_dataset") is None:
            kwargs["eval_dataset"] = evaluator.eval_dataset
        self.llava_evaluator = evaluator
        # [/patch 0001-eval-between-epochs]
        super().__init__(*args, **kwargs)
        self.divergence_guard = divergence_guard

    def _get_train_sampler(self, train_dataset=None):
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        if getattr(self.args, "group_by_modality_length", False) and dataset is not None:
            return LengthGroupedSampler(
                self.args.train_batch_size,
                world_size=self.args.world_size * self.args.gradient_accumulation_steps,
                lengths=dataset.modality_lengths,
                group_by_modality=True,
                seed=self.args.data_seed if self.args.data_seed is not None else self.args.seed,
            )
        return super()._get_train_sampler(dataset)

    def create_optimizer(self, model=None):
        projector_lr = getattr(self.args, "mm_projector_lr", None)
        if self.optimizer is not None or projector_lr is None:
            return super().create_optimizer(model)
        opt_model = self.model if model is None else model
        decay = set(self.get_decay_parameter_names(opt_model))
        groups: dict[tuple[bool, bool], list] = {(d, p): [] for d in (True, False) for p in (True, False)}
        for name, param in opt_model.named_parameters():
            if param.requires_grad:
                is_projector = any(key in name for key in checkpointing.PROJECTOR_KEYS)
                groups[(name in decay, is_projector)].append(param)
        param_groups = []
        for (decayed, is_projector), params in groups.items():
            if not params:
                continue
            group = {"params": params, "weight_decay": self.args.weight_decay if decayed else 0.0}
            if is_projector:
                group["lr"] = projector_lr
            param_groups.append(group)
        optimizer_cls, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(self.args, opt_model)
        self.optimizer = optimizer_cls(param_groups, **optimizer_kwargs)
        return self.optimizer

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
        """Also restore the projector: the Trainer reloads only the adapter of a PEFT model."""
        super()._load_from_checkpoint(resume_from_checkpoint, model)
        target = self.model if model is None else model
        if os.path.exists(os.path.join(resume_from_checkpoint, checkpointing.NON_LORA_FILE)):
            checkpointing.load_non_lora_trainables(target, resume_from_checkpoint)

    def training_step(self, model, inputs, num_items_in_batch=None):
        """One micro-batch; stops the run (every rank) when its loss is not finite.

        ``sample_ids`` (added by the training collator) name the batch's records in the error.
        """
        sample_ids = inputs.pop("sample_ids", None)
        loss = super().training_step(model, inputs, num_items_in_batch)
        if self.divergence_guard is not None:
            self.divergence_guard.check_loss(loss, self.state.global_step, sample_ids)
        return loss

    def _maybe_log_save_evaluate(self, tr_loss, grad_norm, *args, **kwargs):
        """Check the optimizer step before anything of it is logged or saved."""
        if self.divergence_guard is not None:
            self.divergence_guard.check_step(
                grad_norm, self.accelerator.optimizer_step_was_skipped, self.state.global_step
            )
        return super()._maybe_log_save_evaluate(tr_loss, grad_norm, *args, **kwargs)

    def _determine_best_metric(self, metrics, trial):
        """A non-finite metric (a diverged evaluation) never becomes the best checkpoint."""
        import math

        name = self.args.metric_for_best_model
        if name is not None:
            key = name if name.startswith("eval_") else f"eval_{name}"
            value = metrics.get(key)
            if value is not None and not math.isfinite(float(value)):
                logger.warning(
                    "%s is %s at step %d: not a candidate for the best checkpoint.", key, value, self.state.global_step
                )
                return False
        return super()._determine_best_metric(metrics, trial)

    # [patch 0001-eval-between-epochs]
    def evaluation_loop(
        self, dataloader, description, prediction_loss_only=None, ignore_keys=None, metric_key_prefix="eval"
    ):
        """The validation set goes to the LLaVA evaluator (token-weighted loss, generation, VQA accuracy)."""
        evaluator = self.llava_evaluator
        if evaluator is not None and getattr(dataloader, "dataset", None) is evaluator.eval_dataset:
            return evaluator.evaluation_loop(self, metric_key_prefix)
        return super().evaluation_loop(dataloader, description, prediction_loss_only, ignore_keys, metric_key_prefix)

    def _load_best_model(self):
        """Also restore the projector: for a PEFT model the Trainer reloads only the adapter."""
        super()._load_best_model()
        best = self.state.best_model_checkpoint
        if best and os.path.exists(os.path.join(best, checkpointing.NON_LORA_FILE)):
            checkpointing.load_non_lora_trainables(self.model, best)

    # [/patch 0001-eval-between-epochs]

    # Checkpoints are written under output_dir/.staging and renamed into place
    # once every rank has finished, so a run killed mid-save never leaves a
    # partial checkpoint-N behind (resume would pick it up).
    _staging_root: str | None = None

    def _get_output_dir(self, trial) -> str:
        return self._staging_root or super()._get_output_dir(trial)

    def _save_checkpoint(self, model, trial, *args, **kwargs):
        if self.divergence_guard is not None:
            self.divergence_guard.check_weights(
                self.model.named_parameters(), self.state.global_step, f"checkpoint-{self.state.global_step}"
            )
        run_dir = self._get_output_dir(trial)
        folder = f"checkpoint-{self.state.global_step}"
        staging_root = os.path.join(run_dir, checkpointing.STAGING_DIR)
        staged = os.path.join(staging_root, folder)
        if self.args.should_save and os.path.exists(staged):
            shutil.rmtree(staged)  # left over from a run killed while saving
        self.accelerator.wait_for_everyone()
        self._staging_root = staging_root
        try:
            if getattr(self.args, "tune_mm_mlp_adapter", False):
                # Stage-1 pretraining: the projector is the only thing trained.
                checkpointing.save_projector(self.model, staged, self.args)
            else:
                super()._save_checkpoint(model, trial, *args, **kwargs)
                if getattr(self.args, "lora_enable", False):
                    checkpointing.save_lora_extras(self.model, staged, self.args)
        finally:
            self._staging_root = None
        self.accelerator.wait_for_everyone()
        checkpointing.point_best_checkpoint(self.state, run_dir)
        if self.args.should_save:
            checkpointing.publish_checkpoint(staged, os.path.join(run_dir, folder), self.state)
            rotate_checkpoints(
                output_dir=run_dir,
                save_total_limit=self.args.save_total_limit,
                best_model_checkpoint=self.state.best_model_checkpoint,
                use_mtime=False,
            )
        self.accelerator.wait_for_everyone()
