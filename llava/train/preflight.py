"""Pre-flight check of a training data file, before any model is loaded.

Reads the LLaVA-format JSON once, checks every record and reports every
problem at once, grouped by kind, each naming the file and the record (index
and id): malformed JSON (with line and column), records or turns of the
wrong shape, roles that are not human/gpt or do not alternate, empty values,
``<image>`` markers that do not match the ``image`` key, missing or
unreadable image files, and samples whose answer would be cut off entirely
once the image features are spliced in (each ``<image>`` takes
``num_image_tokens`` positions of ``model_max_length``).

Run on its own (exit status 1 when something is wrong):

    python -m llava.train.preflight --data_path playground/data/okvqa/train.json \\
        --image_folder playground/data/coco --tokenizer liuhaotian/llava-v1.5-7b \\
        --version v1 --model_max_length 2048 --num_image_tokens 576

``--skip_flagged`` keeps the clean records instead of failing (and
``--kept_path`` writes them out). In training, ``run_preflight(...)`` returns a
:class:`PreflightReport`; ``report.entries_or_raise(skip_flagged=...)`` gives
the records to train on or raises :class:`PreflightError`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from llava.constants import DEFAULT_IMAGE_TOKEN, IGNORE_INDEX, IMAGE_TOKEN_INDEX
from llava.conversation import Conversation
from llava.eval.generation import image_turn
from llava.flags import Parser
from llava.train.data import (
    HUMAN,
    STRUCTURAL_PROBLEMS,
    DatasetError,
    SelectedEntries,
    check_conversation,
    describe_entry,
    json_error_message,
    resolve_template,
    tokenize_conversation,
)
from llava.utils import plural, write_atomic

logger = logging.getLogger(__name__)

# Every kind of problem, in report order, with what it means for training.
PROBLEM_KINDS: dict[str, str] = {
    "data_file_missing": "the data file does not exist",
    "invalid_json": "the data file is not well-formed JSON",
    "not_a_list": "the data file must hold a JSON list of records",
    "no_records": "the data file holds no records: there is nothing to train on",
    "entry_not_object": "a record must be a JSON object",
    "missing_conversations": "'conversations' must be a non-empty list of turns",
    "bad_turn": "each turn must be an object with string 'from' and 'value'",
    "bad_role": "'from' must be 'human' or 'gpt'",
    "bad_alternation": "turns must alternate human, gpt, ... (one leading gpt turn is dropped)",
    "empty_value": "a turn has an empty value",
    "template_mismatch": "the conversation does not fit the conversation template",
    "bad_image_field": "'image' must be a non-empty relative path",
    "image_token_missing": "the record has an image but no <image> in its human turns: it would train blind",
    "image_key_missing": "<image> appears in a record without an 'image' key",
    "multiple_image_tokens": "more than one <image> in a record (one image per record)",
    "image_missing": "the image file does not exist",
    "image_unreadable": "the image file cannot be decoded (corrupt or truncated)",
    "no_learnable_tokens": "the record has no answer tokens to learn",
    "answer_truncated": "every answer token lies beyond model_max_length once the image is spliced in",
}
FILE_LEVEL_KINDS = ("data_file_missing", "invalid_json", "not_a_list", "no_records")
# Images checked in parallel, with a progress bar from this many on.
PROGRESS_BAR_FROM = 256


class PreflightError(ValueError):
    """The data file has problems; the message lists them all (``.report`` holds them)."""

    def __init__(self, message: str, report: PreflightReport):
        super().__init__(message)
        self.report = report


@dataclass(frozen=True)
class Problem:
    """One problem: its kind (a ``PROBLEM_KINDS`` key), where, and what exactly."""

    kind: str
    message: str
    data_path: str
    index: int | None = None
    entry: Any = None

    def __str__(self) -> str:
        where = self.data_path if self.index is None else f"{self.data_path} {describe_entry(self.index, self.entry)}"
        return f"{where}: {self.message}"


@dataclass
class PreflightReport:
    """What the preflight found in one data file."""

    data_path: str
    entries: list | None
    problems: list[Problem] = field(default_factory=list)
    # Record index -> its training length (tokens, each image as its positions, cut to model_max_length).
    lengths: dict[int, int] = field(default_factory=dict)

    @property
    def longest(self) -> int:
        """The longest record training will see (0 when none was measured)."""
        flagged = set(self.flagged_indices)
        return max((length for index, length in self.lengths.items() if index not in flagged), default=0)

    @property
    def num_entries(self) -> int:
        return len(self.entries) if self.entries is not None else 0

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def file_unusable(self) -> bool:
        """True when the file itself is broken (missing, not JSON, not a list): no record was checked."""
        return any(problem.kind in FILE_LEVEL_KINDS for problem in self.problems)

    def by_kind(self) -> dict[str, list[Problem]]:
        """Problems grouped by kind, in ``PROBLEM_KINDS`` order."""
        groups: dict[str, list[Problem]] = {}
        for kind in PROBLEM_KINDS:
            found = [problem for problem in self.problems if problem.kind == kind]
            if found:
                groups[kind] = found
        return groups

    @property
    def counts(self) -> dict[str, int]:
        """How many problems of each kind (exact, whatever the report shows)."""
        return {kind: len(found) for kind, found in self.by_kind().items()}

    @property
    def flagged_indices(self) -> list[int]:
        """Indices of the records with at least one problem."""
        return sorted({problem.index for problem in self.problems if problem.index is not None})

    def kept_entries(self) -> SelectedEntries:
        """The records without problems, with their indices in the file."""
        if self.entries is None:
            raise PreflightError(self.format(), self)
        flagged = set(self.flagged_indices)
        kept = [(index, entry) for index, entry in enumerate(self.entries) if index not in flagged]
        return SelectedEntries([entry for _, entry in kept], [index for index, _ in kept], self.data_path)

    def format(self, max_per_kind: int = 10, skip_hint: str | None = "--skip_flagged") -> str:
        """A readable report: a summary, then each kind with up to ``max_per_kind`` problems listed."""
        if self.ok:
            return f"Preflight: {self.num_entries} records in {self.data_path}, no problems."
        flagged = len(self.flagged_indices)
        lines = [
            f"Preflight found {plural(len(self.problems), 'problem')} in {self.data_path}"
            + (f" ({flagged} of {self.num_entries} records flagged):" if self.entries is not None else ":")
        ]
        for kind, found in self.by_kind().items():
            lines.append(f"{kind} ({len(found)}): {PROBLEM_KINDS[kind]}")
            lines += [f"  - {problem}" for problem in found[:max_per_kind]]
            if len(found) > max_per_kind:
                lines.append(f"  ... and {len(found) - max_per_kind} more")
        if not self.file_unusable and skip_hint:
            lines.append(
                f"Fix the data, or skip the flagged records ({skip_hint}) to train on the "
                f"{self.num_entries - flagged} clean ones."
            )
        return "\n".join(lines)

    def raise_if_problems(self, max_per_kind: int = 10, skip_hint: str | None = "--skip_flagged") -> None:
        if not self.ok:
            raise PreflightError(self.format(max_per_kind, skip_hint), self)

    def entries_or_raise(
        self, skip_flagged: bool = False, max_per_kind: int = 10, skip_hint: str | None = "--skip_flagged"
    ) -> SelectedEntries:
        """The records to train on.

        No problems: all of them. Problems and ``skip_flagged``: the clean
        records; the report and the number skipped are logged as a warning
        (a broken file, or nothing left, still raises). Otherwise
        :class:`PreflightError` with every problem.
        """
        if self.ok:
            return self.kept_entries()
        if not skip_flagged or self.file_unusable:
            self.raise_if_problems(max_per_kind, skip_hint)
        kept = self.kept_entries()
        if not kept:
            raise PreflightError(
                self.format(max_per_kind, None) + "\nEvery record is flagged: nothing to train on.", self
            )
        logger.warning("%s", self.format(max_per_kind, None))
        logger.warning(
            "Preflight: skipped %d flagged records of %d in %s; training on %d.",
            self.num_entries - len(kept),
            self.num_entries,
            self.data_path,
            len(kept),
        )
        return kept


# ------------------------------------------------------------------- checks


def _load(data_path: str, report: PreflightReport) -> list | None:
    def fail(kind: str, message: str) -> None:
        report.problems.append(Problem(kind, message, data_path))

    try:
        with open(data_path, encoding="utf-8") as handle:
            text = handle.read()
        if not text.strip():
            return fail(
                "no_records",
                f"data file {data_path} is empty: write the training records into it "
                "(a JSON list of LLaVA conversation records) or point --data_path at the right file",
            )
        data = json.loads(text)
    except FileNotFoundError:
        return fail("data_file_missing", f"data file {data_path} does not exist")
    except json.JSONDecodeError as error:
        return fail("invalid_json", json_error_message(data_path, error))
    except UnicodeDecodeError as error:
        return fail("invalid_json", f"data file {data_path} is not UTF-8 text: {error}")
    except RecursionError:
        return fail("invalid_json", f"data file {data_path}: not valid JSON (nested too deeply)")
    if not isinstance(data, list):
        return fail("not_a_list", f"data file {data_path} holds a JSON {type(data).__name__}, not a list of records")
    if not data:
        return fail(
            "no_records",
            f"data file {data_path} is an empty list: nothing to train on; "
            "point --data_path at the file with the records",
        )
    return data


def _image_counts(turns: list) -> tuple[int, int]:
    """``<image>`` markers in the human turns, and in all turns."""
    human = total = 0
    for turn in turns:
        if isinstance(turn, Mapping) and isinstance(turn.get("value"), str):
            count = turn["value"].count(DEFAULT_IMAGE_TOKEN)
            total += count
            human += count if turn.get("from") == HUMAN else 0
    return human, total


def _check_image_file(path: str) -> tuple[str, str] | None:
    """Decode every pixel, as training will (``llava.images``): a truncated file fails here."""
    from llava.images import ImageReadError, verify_image

    if not os.path.exists(path):
        return "image_missing", f"image {path} does not exist"
    try:
        verify_image(path)
    except ImageReadError as error:
        return "image_unreadable", f"image {path} cannot be read: {error.reason}"
    return None


def _check_images(paths: dict[str, list[int]]) -> dict[str, tuple[str, str]]:
    """Problems of the image files (path -> (kind, message)), checked in a thread pool."""
    from tqdm.auto import tqdm

    results: dict[str, tuple[str, str]] = {}
    workers = min(32, 4 * (os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        checked = pool.map(_check_image_file, paths)
        bar = tqdm(
            zip(paths, checked, strict=True),
            total=len(paths),
            desc="preflight: images",
            unit="img",
            disable=len(paths) < PROGRESS_BAR_FROM,
        )
        for path, problem in bar:
            if problem is not None:
                results[path] = problem
    return results


def _token_problem(
    turns: list,
    has_image: bool,
    tokenizer,
    template: Conversation,
    mm_use_im_start_end: bool | None,
    model_max_length: int,
    num_image_tokens: int,
) -> tuple[tuple[str, str] | None, int | None]:
    """Tokenize the record as training will: (the problem or None, its length with images spliced in)."""
    if has_image and mm_use_im_start_end is not None:  # None: a text-only run, no image formatting
        turns = [{**turn, "value": image_turn(turn["value"], template, mm_use_im_start_end)} for turn in turns]
    try:
        sample = tokenize_conversation(turns, tokenizer, template, has_image, truncate=False)
    except DatasetError as error:
        return ("template_mismatch", str(error)), None
    learned = [position for position, label in enumerate(sample.labels) if label != IGNORE_INDEX]
    if not learned:
        return ("no_learnable_tokens", "no token of the record is learned (a missing or empty gpt answer?)"), None
    # Position of each token once every image token became num_image_tokens positions
    # (at least its own one: a model without a vision tower splices nothing in).
    num_image_tokens = max(num_image_tokens, 1)
    images_before = 0
    first_learned_position = None
    for position, token in enumerate(sample.input_ids):
        if token == IMAGE_TOKEN_INDEX:
            images_before += 1
        elif sample.labels[position] != IGNORE_INDEX:
            first_learned_position = position + images_before * (num_image_tokens - 1)
            break
    total = len(sample.input_ids) + images_before * (num_image_tokens - 1)
    if first_learned_position is not None and first_learned_position >= model_max_length:
        return (
            (
                "answer_truncated",
                f"the first answer token is at position {first_learned_position} of {total} "
                f"(images counted as {num_image_tokens} positions) but model_max_length is {model_max_length}: "
                "the sample would train on nothing",
            ),
            None,
        )
    return None, min(total, model_max_length)


def run_preflight(
    data_path: str | os.PathLike,
    image_folder: str | os.PathLike | None,
    tokenizer,
    conversation_template: Conversation | str | None,
    model_max_length: int,
    num_image_tokens: int,
    mm_use_im_start_end: bool = False,
    is_multimodal: bool = True,
) -> PreflightReport:
    """Check every record of ``data_path``; returns the report (raises nothing for data problems).

    ``tokenizer`` and ``conversation_template`` (a template, a
    ``conv_templates`` key, or None for ``default_conversation``) must be
    the ones training uses; ``mm_use_im_start_end`` and ``is_multimodal`` as
    training's ``DataArguments`` will hold them (a text-only run leaves ``<image>`` as text).
    ``num_image_tokens``: positions one image
    takes after splicing (576 for CLIP ViT-L/14 at 336 px).
    """
    data_path = str(data_path)
    template = resolve_template(conversation_template)
    report = PreflightReport(data_path, None)
    entries = _load(data_path, report)
    if entries is None:
        return report
    report.entries = entries

    def flag(index: int, kind: str, message: str) -> None:
        report.problems.append(Problem(kind, message, data_path, index, entries[index]))

    image_users: dict[str, list[int]] = {}
    for index, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            flag(
                index,
                "entry_not_object",
                f"a record must be a JSON object; found {type(entry).__name__} {str(entry)[:40]!r}",
            )
            continue
        turns = entry.get("conversations")
        turn_problems = check_conversation(turns)
        for kind, message in turn_problems:
            flag(index, kind, message)

        has_image = "image" in entry
        image_file = entry.get("image")
        if has_image:
            if not isinstance(image_file, str) or not image_file.strip():
                flag(index, "bad_image_field", f"'image' must be a non-empty relative path; found {image_file!r}")
            else:
                path = os.path.join(str(image_folder), image_file) if image_folder else image_file
                image_users.setdefault(path, []).append(index)

        if isinstance(turns, list):
            in_human, in_all = _image_counts(turns)
            if has_image and in_human == 0:
                where = " (it appears in a gpt turn)" if in_all else ""
                flag(
                    index,
                    "image_token_missing",
                    f"has 'image' {image_file!r} but no {DEFAULT_IMAGE_TOKEN} in its human turns{where}",
                )
            if not has_image and in_all > 0:
                flag(
                    index, "image_key_missing", f"{DEFAULT_IMAGE_TOKEN} appears {in_all}x but the record has no 'image'"
                )
            if in_all > 1:
                flag(index, "multiple_image_tokens", f"{DEFAULT_IMAGE_TOKEN} appears {in_all} times")

        if not any(kind in STRUCTURAL_PROBLEMS for kind, _ in turn_problems):
            problem, length = _token_problem(
                turns,
                has_image,
                tokenizer,
                template,
                mm_use_im_start_end if is_multimodal else None,
                model_max_length,
                num_image_tokens,
            )
            if problem is not None:
                flag(index, *problem)
            if length is not None:
                report.lengths[index] = length

    for path, (kind, message) in _check_images(image_users).items():
        for index in image_users[path]:
            flag(index, kind, message)
    report.problems.sort(key=lambda problem: (list(PROBLEM_KINDS).index(problem.kind), problem.index or 0))
    return report


# ---------------------------------------------------------------------- CLI


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    from llava.entry import HelpFormatter

    parser = Parser(
        formatter_class=HelpFormatter,
        prog="python -m llava.train.preflight",
        description="Check a LLaVA training data file (records, images, lengths) before training.",
    )
    parser.add_argument("--data_path", required=True, help="the training JSON (a list of LLaVA records)")
    parser.add_argument("--image_folder", default=None, help="folder the records' 'image' paths are relative to")
    parser.add_argument("--tokenizer", required=True, help="tokenizer folder or hub id (the model's)")
    parser.add_argument(
        "--version", default="v1", help="conversation template key, as train.py's --version (default v1)"
    )
    parser.add_argument("--model_max_length", type=int, default=2048, help="training --model_max_length (default 2048)")
    parser.add_argument(
        "--num_image_tokens",
        type=int,
        default=576,
        help="positions one image takes after splicing (576 for CLIP ViT-L/14-336)",
    )
    parser.add_argument("--mm_use_im_start_end", action="store_true", help="as train.py's --mm_use_im_start_end True")
    parser.add_argument(
        "--skip_flagged", action="store_true", help="report problems but keep the clean records (exit 0)"
    )
    parser.add_argument(
        "--kept_path", default=None, help="with --skip_flagged: write the clean records to this JSON file"
    )
    parser.add_argument("--max_per_kind", type=int, default=10, help="problems listed per kind (counts stay exact)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    from transformers import AutoTokenizer

    from llava.model.hub import local_folder

    local_folder(args.tokenizer)  # a path that is neither a folder nor a Hub id: one clear error

    from llava.conversation import template_for_version

    tokenizer = AutoTokenizer.from_pretrained(
        args.tokenizer, model_max_length=args.model_max_length, padding_side="right", use_fast=False
    )
    report = run_preflight(
        args.data_path,
        args.image_folder,
        tokenizer,
        template_for_version(args.version),
        args.model_max_length,
        args.num_image_tokens,
        args.mm_use_im_start_end,
    )
    print(report.format(args.max_per_kind))
    if report.ok:
        return 0
    if not args.skip_flagged or report.file_unusable:
        return 1
    kept = report.kept_entries()
    print(f"Skipped {report.num_entries - len(kept)} flagged records of {report.num_entries}; {len(kept)} kept.")
    if args.kept_path:
        write_atomic(args.kept_path, json.dumps(list(kept), ensure_ascii=False, indent=1))
        print(f"Wrote the kept records to {args.kept_path}")
    return 0 if kept else 1


if __name__ == "__main__":
    from llava.entry import run

    sys.exit(run(main))
