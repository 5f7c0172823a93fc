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

import torch
from torch.utils.data import Sampler
from transformers import Trainer

from llava.train import checkpointing

logger = logging.getLogger("llava")

PROJECTOR_KEYS = ("mm_projector", "vision_resampler")


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


class LengthGroupedSampler(Sampler):
    """Samples indices grouped by length (and, optionally, by modality)."""

    def __init__(self, batch_size: int, world_size: int, lengths=None, generator=None,
                 variable_length: bool = False, group_by_modality: bool = False):
        if lengths is None:
            raise ValueError("LengthGroupedSampler needs the per-sample lengths.")
        self.batch_size = batch_size
        self.world_size = world_size
        self.lengths = list(lengths)
        self.generator = generator
        self.group_by_modality = group_by_modality

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self):
        grouping = modality_length_grouped_indices if self.group_by_modality else length_grouped_indices
        lengths = self.lengths if self.group_by_modality else [abs(x) for x in self.lengths]
        return iter(grouping(lengths, self.batch_size, self.world_size, self.generator))


class LLaVATrainer(Trainer):
    def _get_train_sampler(self, train_dataset=None):
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        if getattr(self.args, "group_by_modality_length", False) and dataset is not None:
            return LengthGroupedSampler(
                self.args.train_batch_size,
                world_size=self.args.world_size * self.args.gradient_accumulation_steps,
                lengths=dataset.modality_lengths,
                group_by_modality=True,
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
                is_projector = any(key in name for key in PROJECTOR_KEYS)
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

    def _save_checkpoint(self, model, trial, *args, **kwargs):
        if getattr(self.args, "tune_mm_mlp_adapter", False):
            # Stage-1 pretraining: the projector is the only thing trained.
            folder = os.path.join(self._get_output_dir(trial=trial), f"checkpoint-{self.state.global_step}")
            checkpointing.save_projector(self.model, folder, self.args)
            return None
        result = super()._save_checkpoint(model, trial, *args, **kwargs)
        if getattr(self.args, "lora_enable", False):
            folder = os.path.join(self._get_output_dir(trial=trial), f"checkpoint-{self.state.global_step}")
            checkpointing.save_lora_extras(self.model, folder, self.args)
        return result
