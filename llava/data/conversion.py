"""The converters' shared machinery: input problems, the summary, small record helpers, the command line.

``llava.data.vqa`` (any short-answer VQA data) and its fronts ``okvqa`` and
``aokvqa`` build on it; see docs/CUSTOM_DATA.md for the files they write.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from llava.constants import DEFAULT_IMAGE_TOKEN
from llava.metrics.vqa import most_common_answer, training_target
from llava.utils import plural

DEFAULT_PROMPT_SUFFIX = "Answer the question using a single word or phrase."
IMAGES_DIR = "images"
# Every file name a conversion may write in --out; stale ones from an earlier run are removed.
OUTPUT_FILES = (
    "train.json",
    "val.json",
    "val_subset.json",
    "val_questions.jsonl",
    "val_annotations.json",
    "val_questions_mc.jsonl",
    "summary.json",
)
# How many ids an error message or the printed summary lists before "... and N more".
LISTED_IDS = 20
# Kinds of input problems, in report order: kind -> (the flag that skips it, what it means).
ISSUE_KINDS = {
    "missing_annotation": ("--skip-missing-annotations", "questions without an annotation"),
    "bad_answers": ("--skip-bad-answers", "questions without usable answers"),
    "bad_question": (
        "--skip-bad-questions",
        "questions with no text, an '<image>' tag or no image id",
    ),
    "duplicate_id": ("--skip-duplicates", "duplicate question ids"),
    "bad_image": ("--skip-bad-images", "questions whose image is missing or unreadable"),
    "shared_image": ("--skip-shared-images", "train questions on an image that val also uses"),
}
SPLITS = ("train", "val")


def field_help(text: str, **extra: Any) -> dict[str, Any]:
    """A config field's ``metadata``: its ``--help`` text and any other argparse keyword (choices, aliases)."""
    return {"help": text, **extra}


def option(default: Any = None, text: str = "", factory: Callable[[], Any] | None = None, **extra: Any) -> Any:
    """A config dataclass field with its ``--help`` ``text`` (``factory`` for a list default).

    ``extra`` goes to argparse (``choices``, ``aliases``).
    """
    if factory is not None:
        return field(default_factory=factory, metadata=field_help(text, **extra))
    return field(default=default, metadata=field_help(text, **extra))


@dataclass(frozen=True)
class Issue:
    """One problem in the input: its kind, file, question id, why, and where ('line 5')."""

    kind: str
    file: str
    question_id: int | str
    reason: str = ""
    where: str = ""


class ConversionError(Exception):
    """The input has problems (all listed in the message) or the configuration is wrong."""

    def __init__(self, message: str, issues: Sequence[Issue] = ()):
        super().__init__(message)
        self.issues = list(issues)


@dataclass
class ConversionSummary:
    """What a conversion did; also written as summary.json."""

    source: str
    """The input kind: 'official', 'huggingface', 'files'."""
    out_dir: str
    image_folder: str
    """Pass this as --image_folder: every record's "image" is relative to it."""
    image_check: str
    """'decoded' (every image opened) or 'presence only' (--no-image-check)."""
    prompt_suffix: str
    splits: dict[str, dict[str, Any]]
    """Per output split: questions, images, per_category counts, target_words distribution."""
    files: dict[str, str]
    """Output kind -> file name inside out_dir."""
    skipped: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Issue kind -> {"flag", "count", "question_ids"} for every kind dropped by a --skip-* flag."""
    filters: dict[str, Any] = field(default_factory=dict)
    val_subset: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The summary as plain JSON-ready data (fixed key order)."""
        return asdict(self)

    def format(self, title: str = "OK-VQA", scorer: str = "llava.eval.eval_okvqa") -> str:
        """A human-readable report: counts, skips, target lengths and how to use the output."""
        out = Path(self.out_dir)
        lines = [f"{title} converted ({self.source} input) -> {self.out_dir}"]
        for name, stats in self.splits.items():
            lines.append(
                f"  {name:<11}{stats['questions']:>7} questions {stats['images']:>7} images"
                f"  -> {self.files.get(name, '')}"
            )
        if self.val_subset:
            lines.append(
                f"  val subset drawn from {self.val_subset['from']} with seed {self.val_subset['seed']}"
                f" ({self.val_subset['size']} of {self.val_subset['requested']} requested)"
            )
        for name, stats in self.splits.items():
            categories = ", ".join(f"{code or '(none)'} {count}" for code, count in stats["per_category"].items())
            lines.append(f"  {name} per category: {categories or '-'}")
        for name, stats in self.splits.items():
            total = stats["questions"] or 1
            lengths = ", ".join(
                f"{words} word{'s' if words != '1' else ''} {100 * count / total:.1f}%"
                for words, count in stats["target_words"].items()
            )
            lines.append(f"  {name} target length: {lengths or '-'}")
        for kind, entry in self.skipped.items():
            lines.append(
                f"  skipped {entry['count']} {ISSUE_KINDS[kind][1]} ({entry['flag']}): "
                f"{list_ids(entry['question_ids'])}"
            )
        if not self.skipped:
            lines.append("  skipped nothing")
        lines.append(f"  images: {self.image_check}")
        lines.extend(f"  note: {note}" for note in self.notes)
        if "train" in self.files:
            lines.append(f"Train with: --data_path {out / self.files['train']} --image_folder {self.image_folder}")
        if "val_annotations" in self.files:
            lines.append(
                f"Score with: python -m {scorer} --answers ANSWERS.jsonl "
                f"--annotations {out / self.files['val_annotations']}"
            )
        return "\n".join(lines)


@dataclass
class Sample:
    """One question as read from the input, before it becomes an output record."""

    question_id: int | str
    question: str
    answers: list[str | None] | None
    """None: no annotation at all; a list with a None: an answer that is not text."""
    question_type: str | None
    split: str
    source_file: str
    where: str = ""
    """Where in source_file ('line 5', 'row 3'); '' when the id says it all."""
    image: str = ""
    """The record's image path, relative to the image folder (or absolute)."""
    image_key: Any = None
    """Questions with the same key show the same image (splits never divide them)."""
    image_file: Path | None = None
    """An image on disk to check."""
    embedded: tuple[int, int] | None = None
    """(source index, row) of embedded image bytes in the EmbeddedSource list."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Extra record fields, written after question_type (A-OKVQA's choices, ...)."""
    target: str = ""
    problem: str | None = None
    """The first problem found with this sample; such samples never reach the output."""


@dataclass(frozen=True)
class EmbeddedSource:
    """A Parquet or Arrow file whose ``column`` holds embedded images (bytes, or {bytes, path})."""

    path: Path
    column: str
    base: Path
    """Folder a row's image path is relative to when its bytes are empty."""


# --------------------------------------------------------------------------
# Small helpers shared with the fronts.
# --------------------------------------------------------------------------


def list_ids(ids: Sequence[Any], limit: int = LISTED_IDS) -> str:
    """'1, 2, 3' or '1, 2, ... and 40 more'."""
    shown = ", ".join(str(item) for item in ids[:limit])
    return shown + (f", ... and {len(ids) - limit} more" if len(ids) > limit else "")


def human_turn(question: str, suffix: str) -> str:
    """The human turn: image token, question, and the suffix on its own line."""
    return "\n".join(part for part in (DEFAULT_IMAGE_TOKEN, question, suffix) if part)


def question_text(question: str, suffix: str) -> str:
    """The model_vqa question text: question and suffix, no image token."""
    return "\n".join(part for part in (question, suffix) if part)


def dump_json(data: Any) -> str:
    """Stable JSON text: two-space indent, UTF-8 characters as they are, final new line."""
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def dump_json_lines(items: Sequence[Any]) -> str:
    """A JSON list with one compact item per line: valid JSON, diffable, fast (C encoder)."""
    if not items:
        return "[]\n"
    return "[\n" + ",\n".join(json.dumps(item, ensure_ascii=False) for item in items) + "\n]\n"


def answer_text(answer: Any) -> str | None:
    """The text of one answer: a string as is, a number as text, a dict's 'answer'/'raw_answer'."""
    if isinstance(answer, str):
        return answer
    if isinstance(answer, (int, float)) and not isinstance(answer, bool):
        return str(answer)
    if isinstance(answer, dict):
        for key in ("answer", "raw_answer", "text"):
            if isinstance(answer.get(key), str):
                return answer[key]
    return None


def id_sort_key(question_id: int | str) -> tuple[int, int, str]:
    """Numbers first in numeric order, then text ids."""
    if isinstance(question_id, int):
        return (0, question_id, "")
    return (1, 0, question_id)


def flag(
    issues: list[Issue],
    sample: Sample | None,
    kind: str,
    file: str,
    question_id: Any,
    reason: str,
    where: str = "",
) -> None:
    """Record a problem; the sample (if any) is then left out of the output."""
    issues.append(Issue(kind, file, question_id, reason, where))
    if sample is not None and sample.problem is None:
        sample.problem = kind


def flag_sample(issues: list[Issue], sample: Sample, kind: str, reason: str) -> None:
    """:func:`flag` a problem at the sample's own file, id and place."""
    flag(issues, sample, kind, sample.source_file, sample.question_id, reason, sample.where)


def answers_problem(sample: Sample, expected: int | None = None) -> str:
    """Why a sample's answers are unusable ('' when fine); sets the target when fine."""
    answers = sample.answers or []
    if expected is not None and len(answers) != expected:
        return f"{len(answers)} answers"
    if not answers:
        return "no answer"
    for position, answer in enumerate(answers, start=1):
        if answer is None:
            return f"answer {position} is not text"
    # Natural text (the most frequent raw spelling of the winning answer); scoring normalises.
    if not most_common_answer(answers):  # type: ignore[arg-type]
        return "no answer left after normalisation"
    sample.target = training_target(answers)  # type: ignore[arg-type]
    return ""


def check_text(
    samples_by_split: dict[str, list[Sample]],
    issues: list[Issue],
    expected_answers: int | None = None,
) -> None:
    """Flag bad answers, bad questions and duplicate ids; set each good sample's target.

    A repeated id within a split keeps its first copy; an id in both train and
    val keeps the val copy (the scorer's annotations are keyed by id).
    """
    for split, samples in samples_by_split.items():
        seen: set[str] = set()
        for sample in samples:
            key = str(sample.question_id)
            if key in seen:
                reason = f"repeated in the {split} split"
                flag_sample(issues, sample, "duplicate_id", reason)
                continue
            seen.add(key)
            question = sample.question.strip()
            if not question:
                flag_sample(issues, sample, "bad_question", "empty question")
            elif DEFAULT_IMAGE_TOKEN in question:
                reason = f"{DEFAULT_IMAGE_TOKEN} in the question"
                flag_sample(issues, sample, "bad_question", reason)
            sample.question = question
            if sample.answers is None:
                continue  # flagged by the reader
            reason = answers_problem(sample, expected_answers)
            if reason:
                flag_sample(issues, sample, "bad_answers", reason)
    if "train" in samples_by_split and "val" in samples_by_split:
        val_ids = {str(sample.question_id) for sample in samples_by_split["val"]}
        for sample in samples_by_split["train"]:
            if str(sample.question_id) in val_ids and sample.problem != "duplicate_id":
                flag_sample(issues, sample, "duplicate_id", "also a val question id")


def format_issues(issues: Sequence[Issue], title: str, kinds: dict[str, tuple[str, str]] | None = None) -> str:
    """One message for every problem: per kind and file, the count, rows/ids, the flag to skip.

    ``kinds``: the front's wording of ISSUE_KINDS (same keys, same order).
    """
    kinds = kinds or ISSUE_KINDS
    groups: dict[tuple[str, str], list[Issue]] = {}
    for issue in issues:
        groups.setdefault((issue.kind, issue.file), []).append(issue)
    order = list(kinds)
    lines = [f"{title} conversion failed: {plural(len(issues), 'problem')} in the input; no JSON output was written."]
    ordered = sorted(groups.items(), key=lambda item: (order.index(item[0][0]), item[0][1]))
    for (kind, file), group in ordered:
        flag_name, what = kinds[kind]
        reasons = {issue.reason for issue in group}

        def label(issue: Issue) -> str:
            return f"{issue.where} id {issue.question_id}" if issue.where else str(issue.question_id)

        if len(reasons) == 1:
            entries = [label(issue) for issue in group]
            reason = f" ({reasons.pop()})" if group[0].reason else ""
        else:
            entries = [f"{label(issue)} ({issue.reason})" for issue in group]
            reason = ""
        noun = "" if group[0].where else "question ids "  # a label already says "row 7 id ..."
        lines.append(f"- {len(group)} {what} in {file}{reason}: {noun}{list_ids(entries)} [skip with {flag_name}]")
    flags = " ".join(dict.fromkeys(kinds[kind][0] for (kind, _), _ in ordered))
    lines.append(f"Fix the input, or drop these questions with: {flags}")
    return "\n".join(lines)


def skipped_summary(issues: Sequence[Issue]) -> dict[str, dict[str, Any]]:
    """Issue kind -> flag, count and question ids, for the kinds a --skip-* flag dropped."""
    skipped = {}
    for kind, (flag_name, _) in ISSUE_KINDS.items():
        ids = [issue.question_id for issue in issues if issue.kind == kind]
        if ids:
            skipped[kind] = {"flag": flag_name, "count": len(ids), "question_ids": ids}
    return skipped


def raise_failing(
    issues: Sequence[Issue],
    skipped_kinds: set[str],
    title: str,
    kinds: dict[str, tuple[str, str]] | None = None,
) -> None:
    """Raise ConversionError listing every issue no --skip-* flag covers."""
    failing = [issue for issue in issues if issue.kind not in skipped_kinds]
    if failing:
        raise ConversionError(format_issues(failing, title, kinds), failing)


def skipped_kinds(config: Any) -> set[str]:
    """The issue kinds the config's ``--skip-*`` flags turn from errors into dropped questions.

    Each kind's flag in ISSUE_KINDS names a config field (``--skip-bad-images`` -> ``skip_bad_images``);
    a converter without that field never skips the kind.
    """
    options = vars(config)
    return {
        kind
        for kind, (flag_name, _) in ISSUE_KINDS.items()
        if options.get(flag_name.removeprefix("--").replace("-", "_")) is True
    }


def option_problems(
    val_size: int,
    workers: int | None,
    limit: int | None = None,
    val_from: str | None = None,
    present: Sequence[str] = (),
) -> list[str]:
    """The problems with the options every converter shares, in report order.

    ``val_from`` (None: the converter has no such option) must name a split in ``present``
    when a subset is asked for.
    """
    problems = []
    if val_from is not None:
        if val_from not in SPLITS:
            problems.append(f"--val-from must be train or val, got {val_from!r}")
        elif val_size and val_from not in present:
            problems.append(f"--val-from {val_from} needs the {val_from} split in the input")
    if val_size < 0:
        problems.append(f"--val-size must be 0 or more, got {val_size}")
    if limit is not None and limit <= 0:
        problems.append(f"--limit must be positive, got {limit}")
    if workers is not None and workers <= 0:
        problems.append(f"--workers must be positive, got {workers}")
    return problems


def coco_folder_problems(coco_dir: Path, folders: Sequence[str]) -> list[str]:
    """One line per COCO image folder (``train2014``, ``val2017``, ...) missing under ``coco_dir``."""
    return [
        f"missing COCO image folder {Path(coco_dir) / folder}"
        for folder in folders
        if not (Path(coco_dir) / folder).is_dir()
    ]


def raise_option_problems(problems: Sequence[str], title: str = "") -> None:
    """Raise ConversionError listing every option problem, if there is any."""
    if problems:
        prefix = f"{title} " if title else ""
        raise ConversionError(f"invalid {prefix}conversion options:\n" + "\n".join(f"- {p}" for p in problems))


# --------------------------------------------------------------------------
# Command line (generated from a config dataclass).
# --------------------------------------------------------------------------


def build_parser(config_class: type, prog: str, description: str, epilog: str):
    """The command line of a config dataclass (:func:`llava.flags.dataclass_parser`: one flag per field)."""
    from llava.flags import dataclass_parser

    parser = dataclass_parser(config_class, prog=prog, description=description, epilog=epilog)
    parser.config_class = config_class
    return parser


def parse_config(parser: Any, argv: Sequence[str] | None):
    """The config dataclass of ``parser`` (a :func:`build_parser`) from ``argv`` (default: sys.argv)."""
    from llava.flags import parse_dataclass

    return parse_dataclass(parser, parser.config_class, argv)


def run_converter(
    parser: Any,
    convert: Callable[[Any], ConversionSummary],
    argv: Sequence[str] | None,
    title: str = "OK-VQA",
    scorer: str = "llava.eval.eval_okvqa",
) -> int:
    """A converter's ``main``: parse ``argv``, convert, print the summary (or every problem on stderr).

    Returns the exit status (1 when the input or the options have problems).
    """
    config = parse_config(parser, argv)
    try:
        summary = convert(config)
    except ConversionError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(summary.format(title, scorer=scorer))
    return 0
