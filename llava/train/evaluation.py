"""Evaluation between epochs, the Trainer side: eval loss, generation, scores, files and W&B.

:class:`LLaVAEvaluator` is what ``LLaVATrainer.evaluation_loop`` runs for the
validation set; :func:`build_evaluator` makes it from the parsed flags
(``EvalArguments`` on ``TrainingArguments``). Which questions are asked and how
they are batched is ``llava.eval.batching``; the files are ``eval_reporting``.
docs/EVALUATION.md is the manual (flags, metric names, files, distributed runs).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import logging
import math
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from llava.eval.batching import GenerationItem, generation_items, plan_batches, select_subset
from llava.train.eval_arguments import EvalArguments, needs_generation
from llava.train.eval_reporting import answers_summary, epoch_tag, write_evaluation

logger = logging.getLogger("llava")

__all__ = ["LLaVAEvaluator", "build_evaluator", "generation_items"]

# Longest side of the W&B thumbnails, in pixels.
THUMBNAIL_SIZE = 128


@dataclasses.dataclass(frozen=True)
class ImageSettings:
    """What ``llava.mm_utils.process_images`` reads of a model config."""

    image_aspect_ratio: str


def _rank_and_world_size() -> tuple[int, int]:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


@contextlib.contextmanager
def generation_mode(model) -> Iterator[None]:
    """Eval mode for generation; afterwards train mode and ``config.use_cache`` as they were.

    Gradient checkpointing is untouched (generation does not switch it; in eval mode
    the checkpointed layers run plainly). The CUDA cache is emptied afterwards so
    training does not meet the KV cache's memory.
    """
    import torch

    was_training = model.training
    config = getattr(model, "config", None)
    use_cache = getattr(config, "use_cache", None)
    model.eval()
    try:
        yield
    finally:
        if config is not None and use_cache is not None:
            config.use_cache = use_cache
        model.train(was_training)
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def _progress(iterable, description: str, rank: int):
    """A progress bar on rank 0 (batches), nothing elsewhere."""
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=description, unit="batch", leave=False, disable=rank != 0)


class LLaVAEvaluator:
    """Holds the validation set, the generation subset and the settings; scores a model.

    Build it with :func:`build_evaluator` (from the parsed flags) or directly.
    :meth:`evaluate` works on any LLaVA model (PEFT-wrapped or not) in or out of a
    Trainer; :meth:`evaluation_loop` is what ``LLaVATrainer.evaluation_loop`` calls.
    Every rank of a distributed run must call them together.
    """

    def __init__(
        self,
        tokenizer,
        items: Sequence[GenerationItem],
        *,
        image_folder: str | None,
        image_processor=None,
        image_aspect_ratio: str = "pad",
        batch_size: int = 8,
        max_new_tokens: int = EvalArguments.eval_max_new_tokens,
        stem: bool = False,
        normalization: str = EvalArguments.eval_normalization,
        multiple_choice: bool = True,
        log_examples: int = EvalArguments.eval_log_examples,
        output_dir: str | os.PathLike | None = None,
        eval_dataset=None,
        data_collator=None,
    ):
        from llava.eval.generation import GenerationSettings

        if any(item.image is not None for item in items) and image_processor is None:
            raise ValueError("the generation subset has image questions but no image_processor was given")
        if eval_dataset is not None and data_collator is None:
            from llava.train.data import DataCollatorForSupervisedDataset

            data_collator = DataCollatorForSupervisedDataset(tokenizer)
        self.tokenizer = tokenizer
        self.items = list(items)
        self.image_folder = image_folder
        self.image_processor = image_processor
        self.image_config = ImageSettings(image_aspect_ratio)
        self.batch_size = batch_size
        self.settings = GenerationSettings(max_new_tokens=max_new_tokens)
        self.stem = stem
        self.normalization = normalization
        # The questions that have options, asked again with their lettered prompt.
        self.choice_items = (
            [dataclasses.replace(item, prompt=item.choice_prompt) for item in self.items if item.choice_prompt]
            if multiple_choice
            else []
        )
        self.log_examples = log_examples
        self.output_dir = None if output_dir is None else Path(output_dir)
        self.eval_dataset = eval_dataset
        self.data_collator = data_collator
        self.last_records: list[dict] = []

    # -------------------------------------------------------------------- loss

    def loss(self, model, device=None) -> float | None:
        """Mean loss per learned token over the whole validation set (None without one).

        Token-weighted (summed over every answer token of every record, divided by
        their number), like the training loss, so the value does not depend on the
        batch size or the number of processes. Each rank runs its slice; a short
        slice is padded with a copy of a record whose labels are all ignored (no
        tokens, same collective forwards under ZeRO-3); the sums are all-reduced.
        Only the loss is kept, never the logits.
        """
        import torch

        from llava.constants import IGNORE_INDEX

        if self.eval_dataset is None or len(self.eval_dataset) == 0:
            return None
        rank, world_size = _rank_and_world_size()
        device = device if device is not None else model.device
        count = len(self.eval_dataset)
        per_rank = math.ceil(count / world_size)
        shard = list(range(rank, count, world_size))
        planned = [(index, False) for index in shard] + [(0, True)] * (per_rank - len(shard))
        totals = torch.zeros(2, dtype=torch.float64, device=device)  # summed loss, token count
        starts = range(0, per_rank, self.batch_size)
        with generation_mode(model), torch.no_grad():
            for start in _progress(starts, "eval loss", rank):
                samples = []
                for index, padding in planned[start : start + self.batch_size]:
                    sample = dict(self.eval_dataset[index])
                    if padding:
                        sample["labels"] = torch.full_like(sample["labels"], IGNORE_INDEX)
                    samples.append(sample)
                batch = self.data_collator(samples)
                tokens = int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())
                batch = {
                    key: value.to(device) if isinstance(value, torch.Tensor) else value for key, value in batch.items()
                }
                output = model(**batch)
                if tokens:  # the model's loss is the mean over the batch's tokens
                    totals[0] += output.loss.detach().double() * tokens
                    totals[1] += tokens
                del output
        if world_size > 1:
            import torch.distributed as dist

            dist.all_reduce(totals)
        return float(totals[0] / totals[1]) if totals[1] > 0 else None

    # -------------------------------------------------------------- generation

    def _load_picture(self, relative_path: str):
        from llava.images import open_image

        return open_image(os.path.join(self.image_folder, relative_path) if self.image_folder else relative_path)

    def _answer(self, model, batch: Sequence[GenerationItem]) -> list[str]:
        from llava.eval.generation import answer_batch
        from llava.mm_utils import process_images

        images = None
        if batch[0].image is not None:
            pictures = [self._load_picture(item.image) for item in batch]
            images = process_images(pictures, self.image_processor, self.image_config)
        return answer_batch(model, self.tokenizer, [item.prompt for item in batch], images, self.settings)

    def predict(self, model, items: Sequence[GenerationItem] | None = None) -> list[str]:
        """The answer to every item (every rank gets all of them), by batched greedy generation.

        ``items``: default :attr:`items` (the multiple-choice pass gives :attr:`choice_items`).
        Each rank answers its batches of :func:`plan_batches`; the answers are gathered
        with ``all_gather_object``. ``model`` is the unwrapped model.
        """
        items = self.items if items is None else items
        rank, world_size = _rank_and_world_size()
        local: list[tuple[int, str]] = []
        with generation_mode(model):
            for batch in _progress(plan_batches(items, self.batch_size, rank, world_size), "eval answers", rank):
                texts = self._answer(model, [items[index] for index, _ in batch])
                local += [(index, text) for (index, padding), text in zip(batch, texts, strict=True) if not padding]
        if world_size > 1:
            import torch.distributed as dist

            gathered: list[Any] = [None] * world_size
            dist.all_gather_object(gathered, local)
            local = [answer for part in gathered for answer in part]
        predictions: list[str | None] = [None] * len(items)
        for index, text in local:
            predictions[index] = text
        missing = [items[i].question_id for i, text in enumerate(predictions) if text is None]
        if missing:
            raise RuntimeError(f"evaluation: no answer gathered for question ids {missing[:10]}")
        return predictions  # type: ignore[return-value]

    def records(self, predictions: Sequence[str], choice_predictions: Sequence[str] = ()) -> list[dict]:
        """One record per item: what was asked, the prediction, the answers and its scores (0 to 1).

        Items asked as multiple choice too also get ``choices``, ``correct_choice_idx``,
        ``choice_prediction`` (the answer to the lettered prompt), ``choice`` (the option it
        names, None when unreadable) and ``choice_correct`` (0 or 1).
        """
        from llava.metrics.choices import parse_choice
        from llava.metrics.vqa import exact_match, vqa_accuracy

        by_position = {item.position: text for item, text in zip(self.choice_items, choice_predictions, strict=True)}
        records = []
        for item, prediction in zip(self.items, predictions, strict=True):
            record = {
                "question_id": item.question_id,
                "question": item.question,
                "image": item.image,
                "prediction": prediction,
                "answers": list(item.answers),
                "question_type": item.question_type,
                "vqa_accuracy": vqa_accuracy(
                    prediction, item.answers, stem=self.stem, normalization=self.normalization
                ),
                "exact_match": exact_match(prediction, item.answers, stem=self.stem, normalization=self.normalization),
            }
            if item.position in by_position and item.choices is not None:
                chosen = parse_choice(by_position[item.position], item.choices)
                record.update(
                    choices=list(item.choices),
                    correct_choice_idx=item.correct_choice_idx,
                    choice_prediction=by_position[item.position],
                    choice=chosen,
                    choice_correct=int(chosen is not None and chosen == item.correct_choice_idx),
                )
            records.append(record)
        return records

    # -------------------------------------------------------------- evaluation

    def evaluate(
        self, model, epoch: float | None = 0.0, global_step: int = 0, write: bool = True, device=None
    ) -> dict[str, float]:
        """Eval loss, generation and scores; writes the files (rank 0). Returns metrics without a prefix.

        ``{"loss": 1.23, "vqa_accuracy": 61.3, "exact_match": 55.0, "vqa_accuracy/one": 58.2, ...,
        "generation_count": 500, "generation_seconds": 41.2}`` (accuracies in percent);
        ``loss`` is missing without a validation dataset, the rest without anything
        to generate. Every rank returns the same numbers.
        """
        from llava.metrics.choices import score_choices
        from llava.metrics.vqa import score_predictions

        metrics: dict[str, float] = {}
        loss = self.loss(model, device)
        if loss is not None:
            metrics["loss"] = loss
        scores = choice_scores = None
        self.last_records = []
        if self.items:
            start = time.perf_counter()
            predictions = self.predict(model)
            choice_predictions = self.predict(model, self.choice_items) if self.choice_items else []
            seconds = time.perf_counter() - start
            self.last_records = self.records(predictions, choice_predictions)
            scores = score_predictions(self.last_records, stem=self.stem, normalization=self.normalization)
            if choice_predictions:
                choice_scores = score_choices([record for record in self.last_records if "choice" in record])
                metrics["choice_accuracy"] = float(choice_scores["choice_accuracy"])
                metrics["choice_unparsed"] = float(choice_scores["unparsed"])
            metrics["vqa_accuracy"] = float(scores["vqa_accuracy"])
            metrics["exact_match"] = float(scores["exact_match"])
            metrics.update({f"vqa_accuracy/{name}": float(value) for name, value in scores["per_category"].items()})
            metrics["generation_count"] = float(scores["count"])
            metrics["generation_seconds"] = round(seconds, 3)
            logger.info(
                "Evaluation at %s: VQA accuracy (%s normalization) %.2f, exact match %.2f on %d questions%s "
                "(%.1f s, %.1f questions/s)%s",
                epoch_tag(epoch, global_step),
                self.normalization,
                scores["vqa_accuracy"],
                scores["exact_match"],
                scores["count"],
                ""
                if choice_scores is None
                else f"; choice accuracy {choice_scores['choice_accuracy']:.2f} "
                f"on {choice_scores['count']} ({choice_scores['unparsed']} unparsed)",
                seconds,
                scores["count"] / max(seconds, 1e-9),
                "" if loss is None else f"; eval loss {loss:.4f}",
            )
        if write and self.output_dir is not None and _rank_and_world_size()[0] == 0:
            self.write_outputs(epoch, global_step, loss, scores, choice_scores)
        return metrics

    def write_outputs(
        self,
        epoch: float | None,
        global_step: int,
        eval_loss: float | None,
        scores: dict | None,
        choice_scores: dict | None = None,
    ) -> Path:
        """This evaluation's files under ``output_dir/eval`` (:func:`write_evaluation`)."""
        entry = {
            "tag": epoch_tag(epoch, global_step),
            "epoch": 0.0 if epoch is None else float(epoch),
            "global_step": global_step,
            "eval_loss": eval_loss,
            "vqa_accuracy": None if scores is None else scores["vqa_accuracy"],
            "exact_match": None if scores is None else scores["exact_match"],
            "per_category": {} if scores is None else scores["per_category"],
            "count": 0 if scores is None else scores["count"],
            "normalization": self.normalization,
            "stem": self.stem,
            "choice_accuracy": None if choice_scores is None else choice_scores["choice_accuracy"],
            "choice_unparsed": None if choice_scores is None else choice_scores["unparsed"],
        }
        return write_evaluation(self.output_dir, entry, self.last_records)

    def evaluation_loop(self, trainer, metric_key_prefix: str = "eval"):
        """What ``LLaVATrainer.evaluation_loop`` returns for an evaluation: an ``EvalLoopOutput``.

        Metrics named as the Trainer names them: ``{"eval_loss": ..., "eval_vqa_accuracy": ...,
        "eval_exact_match": ..., "eval_vqa_accuracy/<category>": ..., "eval_generation_count": ...,
        "eval_generation_seconds": ...}``. ``Trainer.evaluate`` then adds its speed
        metrics, logs them (W&B: ``eval/loss``, ``eval/vqa_accuracy``, ...), calls the
        callbacks' ``on_evaluate`` and hands them to ``metric_for_best_model``. Uses the
        unwrapped ``trainer.model``; logs the W&B example table when W&B reports.
        """
        from transformers.trainer_utils import EvalLoopOutput

        state = trainer.state
        metrics = self.evaluate(
            trainer.model, epoch=state.epoch, global_step=state.global_step, device=trainer.args.device
        )
        if "wandb" in (trainer.args.report_to or []) and trainer.is_world_process_zero():
            self.log_examples_to_wandb(state.epoch, state.global_step)
        return EvalLoopOutput(
            predictions=None,
            label_ids=None,
            metrics={f"{metric_key_prefix}_{name}": value for name, value in metrics.items()},
            num_samples=len(self.eval_dataset) if self.eval_dataset is not None else len(self.items),
        )

    # ------------------------------------------------------------------ W&B

    def _thumbnail(self, relative_path: str | None):
        if relative_path is None:
            return None
        picture = self._load_picture(relative_path)
        picture.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE))
        return picture

    def log_examples_to_wandb(self, epoch: float | None, global_step: int) -> bool:
        """Log the first ``log_examples`` records as the W&B table ``eval/examples``.

        Does nothing (returns False) when wandb is not installed, no W&B run is
        active, or there is nothing to show; never raises for a missing wandb.
        """
        if self.log_examples <= 0 or not self.last_records:
            return False
        try:
            import wandb
        except ImportError:
            return False
        if getattr(wandb, "run", None) is None:
            return False
        table = wandb.Table(
            columns=["epoch", "question_id", "image", "question", "prediction", "answers", "vqa_accuracy"]
        )
        for record in self.last_records[: self.log_examples]:
            thumbnail = self._thumbnail(record["image"])
            table.add_data(
                0.0 if epoch is None else float(epoch),
                str(record["question_id"]),
                None if thumbnail is None else wandb.Image(thumbnail),
                record["question"],
                record["prediction"],
                answers_summary(record["answers"]),
                record["vqa_accuracy"],
            )
        wandb.run.log({"eval/examples": table, "train/global_step": global_step})
        return True


def build_evaluator(tokenizer, template, data_args, training_args, num_image_tokens: int) -> LLaVAEvaluator | None:
    """The evaluator for ``--validation_data_path`` (None without it), with its ``eval_dataset``.

    ``data_args``: the training ``DataArguments`` as the built model filled them
    (``image_processor``, ``is_multimodal``, ``mm_use_im_start_end``); ``training_args``: the
    ``TrainingArguments`` with the ``EvalArguments`` fields; ``num_image_tokens``:
    ``llava.model.image_tokens.num_image_tokens`` of the tower. The validation file goes
    through the same pre-flight check as the training file (``--skip_flagged_samples``).
    Raises ``ValueError`` when ``--metric_for_best_model`` needs generation and there is
    nothing to generate.
    """
    from llava.train.data import DataCollatorForSupervisedDataset, LazySupervisedDataset
    from llava.train.preflight import run_preflight

    path = training_args.validation_data_path
    if path is None:
        return None
    eval_data_args = copy.copy(data_args)
    eval_data_args.image_folder = training_args.validation_image_folder or data_args.image_folder
    report = run_preflight(
        data_path=path,
        image_folder=eval_data_args.image_folder,
        tokenizer=tokenizer,
        conversation_template=template,
        model_max_length=training_args.model_max_length,
        num_image_tokens=num_image_tokens,
        mm_use_im_start_end=data_args.mm_use_im_start_end,
        is_multimodal=data_args.is_multimodal,
    )
    entries = report.entries_or_raise(
        skip_flagged=data_args.skip_flagged_samples, skip_hint="--skip_flagged_samples True"
    )
    eval_dataset = LazySupervisedDataset(path, tokenizer, eval_data_args, template, entries=entries)

    generate = training_args.eval_generate
    if generate is None:
        generate = any(isinstance(entry, Mapping) and "answers" in entry for entry in entries)
    items: list[GenerationItem] = []
    if generate:
        seed = training_args.data_seed if training_args.data_seed is not None else training_args.seed
        everything = generation_items(entries, template, eval_data_args, positions=entries.source_indices)
        items = select_subset(everything, training_args.eval_max_samples, seed)
        logger.info(
            "Evaluation: loss on %d validation records, generation on %d of %d questions (%s)",
            len(entries),
            len(items),
            len(everything),
            "all" if len(items) == len(everything) else f"drawn with seed {seed}",
        )
    multiple_choice = training_args.eval_multiple_choice
    with_choices = sum(item.choice_prompt is not None for item in items)
    if multiple_choice and not with_choices:
        raise ValueError(
            f"--eval_multiple_choice True, but no generated question of {path} carries 'choices' and "
            "'correct_choice_idx'; drop the flag or give the A-OKVQA val_subset.json"
        )
    if with_choices and multiple_choice is not False:
        logger.info("Evaluation: %d questions also asked as multiple choice (choice_accuracy)", with_choices)
    metric = training_args.metric_for_best_model
    if (
        metric
        and metric.removeprefix("eval_") == "choice_accuracy"
        and not (with_choices and multiple_choice is not False)
    ):
        raise ValueError(
            f"--metric_for_best_model {metric} needs multiple-choice questions ('choices' and 'correct_choice_idx' "
            f"in {path}) and --eval_multiple_choice not False; use --metric_for_best_model vqa_accuracy"
        )
    if needs_generation(metric) and not items:
        raise ValueError(
            f"--metric_for_best_model {metric} needs generated answers, but there is nothing to generate "
            f"from {path} (no record carries 'answers'); add --eval_generate True to score against each "
            "record's reply, or use --metric_for_best_model loss"
        )
    return LLaVAEvaluator(
        tokenizer,
        items,
        image_folder=eval_data_args.image_folder,
        image_processor=data_args.image_processor,
        image_aspect_ratio=data_args.image_aspect_ratio,
        batch_size=training_args.per_device_eval_batch_size,
        max_new_tokens=training_args.eval_max_new_tokens,
        stem=training_args.eval_stem,
        normalization=training_args.eval_normalization,
        multiple_choice=multiple_choice is not False,
        log_examples=training_args.eval_log_examples,
        output_dir=training_args.output_dir,
        eval_dataset=eval_dataset,
        data_collator=DataCollatorForSupervisedDataset(tokenizer),
    )
