"""Evaluation during training: eval loss and OK-VQA accuracy from batched greedy generation.

Upstream LLaVA never evaluates while it trains. With ``--validation_data_path``
and ``--eval_strategy epoch`` every epoch now ends with an evaluation (and
``--eval_on_start True`` adds one before the first step, logged as epoch 0)::

    deepspeed llava/train/train_mem.py --deepspeed scripts/zero2.json ... \
        --validation_data_path playground/data/okvqa/val_subset.json \
        --eval_strategy epoch --per_device_eval_batch_size 16 --eval_on_start True \
        --eval_max_samples 500 --eval_max_new_tokens 16 --eval_log_examples 32 \
        --metric_for_best_model vqa_accuracy --load_best_model_at_end True --save_strategy epoch

One evaluation, in order:

1. **Eval loss** over the whole validation set (:meth:`LLaVAEvaluator.loss`):
   the mean loss per answer token, weighted by tokens as the training loss
   is, with the training collator and forward; only the loss is kept, never
   the logits. Each rank runs its slice and the sums are all-reduced, so the
   value does not depend on the batch size or the number of processes.
   Logged as ``eval_loss`` (W&B ``eval/loss``).
2. **Generation** (:meth:`LLaVAEvaluator.predict`) on the generation subset
   (``--eval_max_samples`` questions drawn once with ``--seed``; all by
   default): each record's first human turn rendered in the training
   template (``--version``) with the assistant turn left open, exactly the
   prompt training shows up to the answer; batches of
   ``--per_device_eval_batch_size``, left padding, KV cache, greedy, stop at
   EOS or ``--eval_max_new_tokens`` (:func:`llava.eval.generation.answer_batch`,
   shared with ``llava.eval.model_vqa``).
3. **Scoring** with :func:`llava.metrics.vqa.score_predictions` (the
   one metric implementation; ``python -m llava.eval.eval_okvqa`` gives the
   same numbers on the same predictions) under ``--eval_normalization``
   (``lmms-eval`` or ``official``): VQA accuracy, exact match and VQA
   accuracy per ``question_type``, in percent. Records with ``choices`` and
   ``correct_choice_idx`` (A-OKVQA) are also asked with the lettered
   multiple-choice prompt and scored by choice accuracy
   (``--eval_multiple_choice``, on by default for such records).
4. **Outputs**, rank 0 only, written atomically under ``output_dir/eval/``:
   ``epoch_{k}.jsonl`` (every prediction with its answers and scores),
   ``history.json`` (one entry per evaluation) and ``curves.png`` (loss and
   accuracy per epoch), plus a W&B table of ``--eval_log_examples`` examples
   (thumbnail, question, prediction, answers, score) under ``eval/examples``
   when W&B reports (``--report_to wandb``; wandb is imported only then).

Metric names. The Trainer prefixes evaluation metrics with ``eval_`` and its
W&B callback turns ``eval_`` into ``eval/``, so the metrics dict returned to
the Trainer holds ``eval_loss``, ``eval_vqa_accuracy``, ``eval_exact_match``,
``eval_vqa_accuracy/<category>``, ``eval_generation_count`` and
``eval_generation_seconds`` (plus ``eval_choice_accuracy`` and
``eval_choice_unparsed`` with multiple choice); W&B shows ``eval/loss``, ``eval/vqa_accuracy``,
``eval/exact_match``, ``eval/vqa_accuracy/<category>``. The same dict goes to
``metric_for_best_model`` (``vqa_accuracy`` works: the Trainer looks up
``eval_vqa_accuracy``) and to every callback's ``on_evaluate``.

Wiring (how the Trainer calls this): for an evaluation of the validation set,
``LLaVATrainer.evaluation_loop`` returns :meth:`LLaVAEvaluator.evaluation_loop`
(loss, generation, scores, files) instead of running the Trainer's own loop;
``Trainer.evaluate`` then logs the metrics, calls the callbacks and returns them
to the best-checkpoint logic, at every epoch end (``--eval_strategy epoch``)
and before training (``--eval_on_start``). ``train()`` builds the evaluator with
:func:`build_evaluator` after the model (the image processor comes from the
tower) and hands its ``eval_dataset`` to the Trainer. docs/EVALUATION.md is
the user's guide (flags, metric names, files).

Distributed and quantized. Each rank answers its slice of the subset and the
predictions are gathered with ``all_gather_object``, so every rank returns the
same metrics (the best-checkpoint choice must agree). Under ZeRO-3 every
forward is collective: every rank runs the same number of ``generate`` calls
with the same modality (image batches, then text-only batches; short shards
are padded with copies whose answers are dropped), and ``generate`` keeps the
ranks in step itself (``synced_gpus``). Generation uses the unwrapped model
(PEFT or LLaVA, 16-, 8- or 4-bit); afterwards its train mode and
``config.use_cache`` are restored and the CUDA cache is emptied.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import logging
import math
import os
import random
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from llava.metrics.normalization import DEFAULT_NORMALIZATION, NORMALIZATIONS
from llava.utils import atomic_path, finite_or_none, write_atomic

logger = logging.getLogger("llava")

__all__ = [
    "EVAL_FOLDER",
    "EvaluationDataArguments",
    "EvaluationTrainingArguments",
    "GenerationItem",
    "LLaVAEvaluator",
    "build_evaluator",
    "epoch_tag",
    "generation_items",
    "generation_prompt",
    "needs_generation",
    "plan_batches",
    "plot_curves",
    "select_subset",
    "validate_evaluation_args",
]

EVAL_FOLDER = "eval"
HISTORY_FILE = "history.json"
CURVES_FILE = "curves.png"
# Metrics that exist only when answers are generated (metric_for_best_model may name them).
GENERATION_METRICS = ("vqa_accuracy", "exact_match", "choice_accuracy")
# Longest side of the W&B thumbnails, in pixels.
THUMBNAIL_SIZE = 128


# --------------------------------------------------------------------------------------------
# Flags: DataArguments and TrainingArguments inherit these (docs/EVALUATION.md, "How it is wired").
# --------------------------------------------------------------------------------------------


@dataclass
class EvaluationDataArguments:
    """Where the validation records are (fields of ``DataArguments``)."""

    validation_data_path: str | None = field(
        default=None,
        metadata={
            "help": "Validation data: a JSON list of LLaVA conversation records (for OK-VQA the "
            "val_subset.json of llava.data.okvqa, whose records carry 'answers' and 'question_type'). "
            "Needed by --eval_strategy epoch."
        },
    )
    validation_image_folder: str | None = field(
        default=None,
        metadata={
            "help": "Folder the validation records' image paths are relative to; default: --image_folder."
        },
    )


@dataclass
class EvaluationTrainingArguments:
    """How each evaluation generates and reports (fields of ``TrainingArguments``).

    transformers' own ``--eval_strategy``, ``--per_device_eval_batch_size`` (also the
    generation batch), ``--eval_on_start`` (evaluation 0, before training),
    ``--metric_for_best_model`` and ``--load_best_model_at_end`` work as usual.
    """

    eval_generate: bool | None = field(
        default=None,
        metadata={
            "help": "Answer the validation questions by greedy generation and score VQA accuracy at each "
            "evaluation. Default: on when the validation records carry 'answers' (records without them "
            "are scored against their first reply)."
        },
    )
    eval_max_samples: int | None = field(
        default=None,
        metadata={
            "help": "Questions answered by generation at each evaluation: a subset drawn once with --seed, "
            "the same every epoch. Default: all. The eval loss always covers the whole validation set."
        },
    )
    eval_max_new_tokens: int = field(
        default=16,
        metadata={"help": "Longest generated answer, in tokens (generation also stops at EOS)."},
    )
    eval_log_examples: int = field(
        default=32,
        metadata={
            "help": "Examples (image, question, prediction, answers, score) in the W&B table 'eval/examples' "
            "at each evaluation; 0 for none. Every prediction is in output_dir/eval/epoch_{k}.jsonl anyway."
        },
    )
    eval_stem: bool = field(
        default=False,
        metadata={
            "help": "Also stem predictions and answers before matching (-ing verbs lemmatised, plurals "
            "singularised), as evaluators of the stemmed OK-VQA v1.1 answers do. VQA normalisation is "
            "always applied."
        },
    )
    eval_normalization: str = field(
        default=DEFAULT_NORMALIZATION,
        metadata={
            "help": "Answer normalisation of the VQA accuracy: 'lmms-eval' (lmms-eval's EvalAI answer processor, "
            "the number LLaVA-family papers report) or 'official' (the GT-Vision-Lab/VQA evaluator, quirks "
            "included). Named in eval/history.json, the log and the W&B run config. docs/EVALUATION.md.",
            "choices": list(NORMALIZATIONS),
        },
    )
    eval_multiple_choice: bool | None = field(
        default=None,
        metadata={
            "help": "Also ask each question as multiple choice (lettered options, upstream's suffix) and "
            "report choice_accuracy. Default: on when the validation records carry 'choices' and "
            "'correct_choice_idx' (A-OKVQA); False turns it off."
        },
    )


def _enum_value(value: Any) -> Any:
    return getattr(value, "value", value)


def needs_generation(metric: str | None) -> bool:
    """Whether a ``metric_for_best_model`` names a metric that only generation produces."""
    if not metric:
        return False
    name = metric.removeprefix("eval_")
    return name.split("/", 1)[0] in GENERATION_METRICS


def validate_evaluation_args(model_args, data_args, training_args) -> list[str]:
    """Every problem with the evaluation flags, each with its fix (empty when they are fine).

    Same signature as the checks of ``llava.train.arguments.validate``; ``training_args``
    may hold the raw parsed values (strings for strategies). Only the named files are
    looked at.
    """
    problems: list[str] = []
    path = getattr(data_args, "validation_data_path", None)
    image_folder = getattr(data_args, "validation_image_folder", None)
    strategy = _enum_value(getattr(training_args, "eval_strategy", "no")) or "no"
    eval_on_start = bool(getattr(training_args, "eval_on_start", False))
    generate = getattr(training_args, "eval_generate", None)
    metric = getattr(training_args, "metric_for_best_model", None)

    if path is None:
        # --eval_strategy without validation data: the stock check in arguments.py says so.
        if strategy == "no" and eval_on_start:
            problems.append(
                "--eval_on_start True without --validation_data_path: give the validation JSON and "
                "--eval_strategy epoch, or drop --eval_on_start"
            )
    else:
        if not os.path.isfile(path):
            problems.append(
                f"--validation_data_path {path}: no such file (looked for {os.path.abspath(path)})"
            )
        if strategy == "no" and not eval_on_start:
            problems.append(
                f"--validation_data_path {path} with --eval_strategy no: nothing would evaluate; "
                "add --eval_strategy epoch"
            )
    if image_folder is not None and not os.path.isdir(image_folder):
        problems.append(
            f"--validation_image_folder {image_folder}: no such folder "
            f"(looked for {os.path.abspath(image_folder)})"
        )
    if needs_generation(metric):
        if generate is False:
            problems.append(
                f"--metric_for_best_model {metric} with --eval_generate False: that metric comes from "
                "generation; drop --eval_generate False or use --metric_for_best_model loss"
            )
        if getattr(training_args, "greater_is_better", None) is False:
            problems.append(
                f"--metric_for_best_model {metric} with --greater_is_better False: higher accuracy is "
                "better; drop --greater_is_better"
            )
    if getattr(training_args, "load_best_model_at_end", False):
        save = _enum_value(getattr(training_args, "save_strategy", "steps"))
        if strategy == "no":
            problems.append(
                "--load_best_model_at_end True without evaluations: add --validation_data_path and "
                "--eval_strategy epoch (with --save_strategy epoch), or drop --load_best_model_at_end"
            )
        elif save not in ("best", strategy):
            problems.append(
                f"--load_best_model_at_end True needs --save_strategy {strategy} to match --eval_strategy "
                f"{strategy} (found --save_strategy {save}); use --save_strategy {strategy}"
            )
    max_samples = getattr(training_args, "eval_max_samples", None)
    if max_samples is not None and max_samples < 1:
        problems.append(
            f"--eval_max_samples {max_samples}: use a positive count, or leave it out to answer every question"
        )
    if getattr(training_args, "eval_max_new_tokens", 16) < 1:
        problems.append(
            f"--eval_max_new_tokens {training_args.eval_max_new_tokens}: use a positive count (16 for VQA)"
        )
    if getattr(training_args, "eval_log_examples", 0) < 0:
        problems.append(
            f"--eval_log_examples {training_args.eval_log_examples}: use 0 (no table) or a positive count"
        )
    normalization = training_args.eval_normalization
    if normalization not in NORMALIZATIONS:
        problems.append(f"--eval_normalization {normalization}: use one of {', '.join(NORMALIZATIONS)}")
    if getattr(training_args, "per_device_eval_batch_size", 8) < 1:
        problems.append(
            f"--per_device_eval_batch_size {training_args.per_device_eval_batch_size}: use a positive size"
        )
    return problems


# --------------------------------------------------------------------------------------------
# Generation items: what is asked, of which image, and the answers it is scored against.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GenerationItem:
    """One validation question prepared for generation.

    ``position``: the record's index in the validation file. ``prompt``: the
    training prompt up to the answer (assistant turn open). ``answers``: the
    record's ``answers``, or its first reply when it has none. ``choice_prompt``:
    the same question with lettered options (:func:`llava.metrics.choices.choice_prompt`)
    in the same template, for records with ``choices`` and ``correct_choice_idx``.
    """

    position: int
    question_id: Any
    question: str
    prompt: str
    image: str | None
    answers: tuple[str, ...]
    question_type: str | None
    # Multiple choice (A-OKVQA): the options, the right one, and the lettered prompt.
    choices: tuple[str, ...] | None = None
    correct_choice_idx: int | None = None
    choice_prompt: str | None = None


def generation_prompt(human_value: str, template, has_image: bool, data_args) -> str:
    """The prompt training shows before the answer: the human turn, then the open assistant turn.

    The human turn goes through the same ``preprocess_multimodal`` as in training
    (``<image>`` moved to the front, ``<im_start>``/``<im_end>`` with
    ``data_args.mm_use_im_start_end``), so the training prompt of the record starts
    with exactly this text.
    """
    from llava.train.data import preprocess_multimodal

    turn = {"from": "human", "value": human_value}
    if has_image:
        preprocess_multimodal([[turn]], data_args, template)
    conversation = template.copy()
    conversation.messages = []
    conversation.offset = 0
    conversation.append_message(conversation.roles[0], turn["value"])
    conversation.append_message(conversation.roles[1], None)
    return conversation.get_prompt()


def _first_exchange(entry: Mapping) -> tuple[str | None, str | None]:
    """The first human turn's value and the reply after it (None where missing)."""
    turns = entry.get("conversations")
    if not isinstance(turns, list):
        return None, None
    for index, turn in enumerate(turns):
        if isinstance(turn, Mapping) and turn.get("from") == "human" and isinstance(turn.get("value"), str):
            following = turns[index + 1] if index + 1 < len(turns) else None
            reply = following.get("value") if isinstance(following, Mapping) else None
            return turn["value"], reply if isinstance(reply, str) and reply.strip() else None
    return None, None


def generation_items(entries: Sequence[Mapping], template, data_args) -> list[GenerationItem]:
    """A :class:`GenerationItem` per record that has a human turn and something to score against.

    ``entries`` may be the preflight's ``SelectedEntries`` (their ``source_indices``
    become the positions). The ``question_id`` is the record's ``question_id``, else
    its ``id``, else its position. Records without a human turn or without answers
    (no ``answers`` and no reply) are skipped and counted in a warning.
    """
    from llava.constants import DEFAULT_IMAGE_TOKEN
    from llava.metrics.choices import bare_question, choice_prompt

    positions = getattr(entries, "source_indices", None) or range(len(entries))
    items, skipped, bad_choices = [], 0, []
    for position, entry in zip(positions, entries, strict=True):
        human, reply = _first_exchange(entry)
        answers = entry.get("answers")
        if not (isinstance(answers, list) and answers and all(isinstance(a, str) for a in answers)):
            answers = [reply] if reply is not None else None
        if human is None or answers is None:
            skipped += 1
            continue
        has_image = "image" in entry
        question_type = entry.get("question_type")
        question_id = entry.get("question_id", entry.get("id", position))
        choices, correct, lettered = entry.get("choices"), entry.get("correct_choice_idx"), None
        if choices is not None or correct is not None:
            if not (
                isinstance(choices, list)
                and 2 <= len(choices) <= 26
                and all(isinstance(choice, str) for choice in choices)
                and isinstance(correct, int)
                and 0 <= correct < len(choices)
            ):
                bad_choices.append(str(question_id))
                continue
            human_choices = choice_prompt(bare_question(human), choices)
            if has_image:
                human_choices = DEFAULT_IMAGE_TOKEN + "\n" + human_choices
            lettered = generation_prompt(human_choices, template, has_image, data_args)
        items.append(
            GenerationItem(
                position=position,
                question_id=question_id,
                question=human.replace(DEFAULT_IMAGE_TOKEN, "").strip(),
                prompt=generation_prompt(human, template, has_image, data_args),
                image=entry["image"] if has_image else None,
                answers=tuple(answers),
                question_type=None if question_type in (None, "") else str(question_type),
                choices=None if lettered is None else tuple(choices),
                correct_choice_idx=None if lettered is None else correct,
                choice_prompt=lettered,
            )
        )
    if bad_choices:
        raise ValueError(
            f"validation records with unusable 'choices'/'correct_choice_idx' (need 2 to 26 strings and an index "
            f"into them): question ids {', '.join(bad_choices[:20])}" + (" ..." if len(bad_choices) > 20 else "")
        )
    if skipped:
        logger.warning(
            "Evaluation: %d validation records have no human turn or nothing to score against "
            "(no 'answers' and no reply); they count for the eval loss only",
            skipped,
        )
    return items


def select_subset(items: Sequence[GenerationItem], max_samples: int | None, seed: int) -> list[GenerationItem]:
    """``max_samples`` items drawn with ``seed`` (in file order), or all of them."""
    if max_samples is None or max_samples >= len(items):
        return list(items)
    chosen = sorted(random.Random(seed).sample(range(len(items)), max_samples))
    return [items[index] for index in chosen]


def plan_batches(
    items: Sequence[GenerationItem], batch_size: int, rank: int = 0, world_size: int = 1
) -> list[list[tuple[int, bool]]]:
    """This rank's generation batches: lists of ``(index into items, is_padding)``.

    Image questions come first, then text-only ones (a batch never mixes them).
    Each kind is dealt round-robin over the ranks and every shorter shard is padded
    with copies of the kind's first item (``is_padding`` True, answers dropped), so
    every rank runs the same number of batches, of the same kinds and sizes: under
    ZeRO-3 each forward is collective. Within a shard, longer prompts come first so
    a batch holds prompts of similar length (less padding).
    """
    if batch_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"need batch_size >= 1 and 0 <= rank < world_size; got {batch_size}, {rank}, {world_size}")
    batches: list[list[tuple[int, bool]]] = []
    for with_image in (True, False):
        group = [index for index, item in enumerate(items) if (item.image is not None) == with_image]
        if not group:
            continue
        per_rank = math.ceil(len(group) / world_size)
        shard = sorted(group[rank::world_size], key=lambda index: -len(items[index].prompt))
        planned = [(index, False) for index in shard] + [(group[0], True)] * (per_rank - len(shard))
        batches += [planned[start : start + batch_size] for start in range(0, per_rank, batch_size)]
    return batches


def epoch_tag(epoch: float | None, global_step: int) -> str:
    """``epoch_{k}`` at a whole epoch (``epoch_0`` before training), else ``step_{global_step}``."""
    epoch = 0.0 if epoch is None else float(epoch)
    if abs(epoch - round(epoch)) < 1e-6:
        return f"epoch_{round(epoch)}"
    return f"step_{global_step}"


# --------------------------------------------------------------------------------------------
# Files: atomic writes, history, curves.
# --------------------------------------------------------------------------------------------


def read_history(folder: str | os.PathLike) -> list[dict]:
    """The evaluations recorded in ``folder/history.json`` (empty when there is none)."""
    path = Path(folder) / HISTORY_FILE
    if not path.exists():
        return []
    return json.loads(path.read_text(encoding="utf-8"))


def plot_curves(history: Sequence[Mapping], path: str | os.PathLike) -> None:
    """Eval loss (left) and VQA accuracy / exact match in percent (right) per epoch, as a PNG.

    Uses matplotlib's object API with the Agg canvas: no display and no change to the
    process-wide backend. Written atomically.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 3.8), dpi=100)
    FigureCanvasAgg(figure)
    loss_axes, accuracy_axes = figure.subplots(1, 2)
    for axes, keys, ylabel in (
        (loss_axes, (("eval_loss", "eval loss", "o"),), "loss"),
        (accuracy_axes, (
                ("vqa_accuracy", "VQA accuracy", "o"),
                ("exact_match", "exact match", "s"),
                ("choice_accuracy", "choice accuracy", "^"),
            ), "percent"),
    ):
        for key, label, marker in keys:
            points = [(entry["epoch"], entry[key]) for entry in history if entry.get(key) is not None]
            if points:
                axes.plot(*zip(*points, strict=True), marker=marker, label=label)
        axes.set_xlabel("epoch")
        axes.set_ylabel(ylabel)
        axes.grid(alpha=0.3)
        if axes.lines:
            axes.legend()
    if accuracy_axes.lines:
        accuracy_axes.set_ylim(bottom=0)
    loss_axes.set_title("validation loss")
    accuracy_axes.set_title("validation accuracy (generation subset)")
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png")


# --------------------------------------------------------------------------------------------
# The evaluator.
# --------------------------------------------------------------------------------------------


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


def _answers_summary(answers: Sequence[str]) -> str:
    """``race x6, motocross x2, ride x2``: the distinct answers with their counts."""
    return ", ".join(f"{answer} x{count}" if count > 1 else answer for answer, count in Counter(answers).most_common())


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
        max_new_tokens: int = 16,
        stem: bool = False,
        normalization: str = DEFAULT_NORMALIZATION,
        multiple_choice: bool = True,
        log_examples: int = 32,
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
        self.image_config = SimpleNamespace(image_aspect_ratio=image_aspect_ratio)
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
        from PIL import Image

        path = os.path.join(self.image_folder, relative_path) if self.image_folder else relative_path
        try:
            with Image.open(path) as opened:
                return opened.convert("RGB")
        except (OSError, ValueError) as error:
            raise FileNotFoundError(f"evaluation: cannot read image {path}: {error}") from error

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

        by_position = {
            item.position: text for item, text in zip(self.choice_items, choice_predictions, strict=True)
        }
        records = []
        for item, prediction in zip(self.items, predictions, strict=True):
            record = {
                "question_id": item.question_id,
                "question": item.question,
                "image": item.image,
                "prediction": prediction,
                "answers": list(item.answers),
                "question_type": item.question_type,
                "vqa_accuracy": vqa_accuracy(prediction, item.answers, stem=self.stem, normalization=self.normalization),
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
                "" if choice_scores is None else f"; choice accuracy {choice_scores['choice_accuracy']:.2f} "
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
        """``eval/{tag}.jsonl``, ``eval/history.json`` and ``eval/curves.png`` under ``output_dir``.

        ``history.json`` keeps the evaluations of earlier steps; those at this step or
        later (left by a run this one resumed from an earlier checkpoint) are replaced.
        """
        folder = self.output_dir / EVAL_FOLDER
        folder.mkdir(parents=True, exist_ok=True)
        tag = epoch_tag(epoch, global_step)
        predictions_file = None
        if self.last_records:
            predictions_file = f"{tag}.jsonl"
            lines = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in self.last_records)
            write_atomic(folder / predictions_file, lines)
        entry = {
            "tag": tag,
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
            "predictions": predictions_file,
        }
        history = [old for old in read_history(folder) if old["global_step"] < global_step]
        history.append(entry)
        # A diverged evaluation has NaN metrics: written as null, so the file stays JSON.
        write_atomic(folder / HISTORY_FILE, json.dumps(finite_or_none(history), indent=1, allow_nan=False) + "\n")
        plot_curves(history, folder / CURVES_FILE)
        return folder

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
        metrics = self.evaluate(trainer.model, epoch=state.epoch, global_step=state.global_step, device=trainer.args.device)
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
        table = wandb.Table(columns=["epoch", "question_id", "image", "question", "prediction", "answers", "vqa_accuracy"])
        for record in self.last_records[: self.log_examples]:
            thumbnail = self._thumbnail(record["image"])
            table.add_data(
                0.0 if epoch is None else float(epoch),
                str(record["question_id"]),
                None if thumbnail is None else wandb.Image(thumbnail),
                record["question"],
                record["prediction"],
                _answers_summary(record["answers"]),
                record["vqa_accuracy"],
            )
        wandb.run.log({"eval/examples": table, "train/global_step": global_step})
        return True


# --------------------------------------------------------------------------------------------
# Building it from the parsed flags (the step train() calls).
# --------------------------------------------------------------------------------------------


def build_evaluator(tokenizer, template, model_args, data_args, training_args) -> LLaVAEvaluator | None:
    """The evaluator for ``--validation_data_path`` (None without it), with its ``eval_dataset``.

    Call after the model is built: the image processor comes from the vision tower
    (``data_args.image_processor``). The validation file goes through the same
    pre-flight check as the training file (``--skip_flagged_samples`` applies).
    Raises ``ValueError`` when ``--metric_for_best_model`` needs generation and there
    is nothing to generate.
    """
    from llava.train.data import DataCollatorForSupervisedDataset, LazySupervisedDataset
    from llava.train.preflight import run_preflight
    from llava.train.steps import num_image_tokens

    path = getattr(data_args, "validation_data_path", None)
    if path is None:
        return None
    eval_data_args = copy.copy(data_args)
    eval_data_args.image_folder = getattr(data_args, "validation_image_folder", None) or data_args.image_folder
    multimodal = SimpleNamespace(
        is_multimodal=model_args.vision_tower is not None or data_args.is_multimodal,
        mm_use_im_start_end=model_args.mm_use_im_start_end,
    )
    report = run_preflight(
        data_path=path,
        image_folder=eval_data_args.image_folder,
        tokenizer=tokenizer,
        conversation_template=template,
        model_max_length=training_args.model_max_length,
        num_image_tokens=num_image_tokens(model_args),
        data_args_like=multimodal,
    )
    entries = report.entries_or_raise(
        skip_flagged=getattr(data_args, "skip_flagged_samples", False), skip_hint="--skip_flagged_samples True"
    )
    eval_dataset = LazySupervisedDataset(path, tokenizer, eval_data_args, template, entries=entries)

    generate = getattr(training_args, "eval_generate", None)
    if generate is None:
        generate = any(isinstance(entry, Mapping) and "answers" in entry for entry in entries)
    items: list[GenerationItem] = []
    if generate:
        seed = training_args.data_seed if training_args.data_seed is not None else training_args.seed
        everything = generation_items(entries, template, eval_data_args)
        items = select_subset(everything, getattr(training_args, "eval_max_samples", None), seed)
        logger.info(
            "Evaluation: loss on %d validation records, generation on %d of %d questions (%s)",
            len(entries), len(items), len(everything),
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
    if metric and metric.removeprefix("eval_") == "choice_accuracy" and not (with_choices and multiple_choice is not False):
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
        image_processor=getattr(data_args, "image_processor", None),
        image_aspect_ratio=data_args.image_aspect_ratio,
        batch_size=training_args.per_device_eval_batch_size,
        max_new_tokens=getattr(training_args, "eval_max_new_tokens", 16),
        stem=getattr(training_args, "eval_stem", False),
        normalization=training_args.eval_normalization,
        multiple_choice=multiple_choice is not False,
        log_examples=getattr(training_args, "eval_log_examples", 32),
        output_dir=training_args.output_dir,
        eval_dataset=eval_dataset,
        data_collator=DataCollatorForSupervisedDataset(tokenizer),
    )
