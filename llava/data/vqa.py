"""Convert short-answer VQA data in the formats people keep it in to LLaVA training data.

The generic converter; ``llava.data.okvqa`` and ``llava.data.aokvqa`` are thin
fronts over it and its shared modules (``conversion``, ``tables``,
``image_files``, ``output_files``). Never touches the network::

    python -m llava.data.vqa --input data/my_vqa.csv --image-root data/images \\
        --out playground/data/my_vqa --val-fraction 0.1 --seed 0
    python -m llava.data.vqa --splits train=data/train.jsonl val=data/val.parquet --out OUT

Accepted inputs and columns, the files written to ``--out``, every error and
its fix: docs/CUSTOM_DATA.md. Python API: ``convert(VqaConfig(...)) -> ConversionSummary``.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llava.data.conversion import (
    DEFAULT_PROMPT_SUFFIX,
    IMAGES_DIR,
    SPLITS,
    ConversionError,
    ConversionSummary,
    EmbeddedSource,
    Issue,
    Sample,
    answer_text,
    build_parser,
    check_text,
    dump_json,
    flag_sample,
    id_sort_key,
    option,
    option_problems,
    raise_failing,
    raise_option_problems,
    run_converter,
    skipped_kinds,
    skipped_summary,
)
from llava.data.image_files import check_image_files, extract_embedded, new_files_removed_on_error
from llava.data.output_files import carve_subset, split_stats, write_outputs
from llava.data.tables import Table, arrow_column_type, read_tables, struct_has_bytes
from llava.metrics.annotations import ANNOTATIONS_FORMAT
from llava.utils import write_atomic

__all__ = [
    "ANNOTATIONS_FORMAT",
    "COLUMN_NAMES",
    "DEFAULT_PROMPT_SUFFIX",
    "ConversionError",
    "ConversionSummary",
    "EmbeddedSource",
    "Issue",
    "Sample",
    "VqaConfig",
    "convert",
    "main",
]

DEFAULT_OUT_DIR = "playground/data/vqa"
# Column roles -> the names looked for (case-insensitive), first match wins.
COLUMN_NAMES = {
    "image": (
        "image",
        "image_path",
        "image_file",
        "file_name",
        "filename",
        "img",
        "img_path",
        "path",
    ),
    "question": ("question", "query", "question_text", "prompt", "instruction"),
    "answer": (
        "answers",
        "answer",
        "direct_answers",
        "multiple_choice_answer",
        "label",
        "labels",
        "target",
    ),
    "id": ("question_id", "id", "qid", "uid", "sample_id"),
    "category": ("question_type", "category", "type", "topic"),
}
REQUIRED_ROLES = ("image", "question", "answer")

# --------------------------------------------------------------------------
# Configuration (the command line is generated from it).
# --------------------------------------------------------------------------


@dataclass
class VqaConfig:
    """One conversion of generic VQA data; ``python -m llava.data.vqa --help`` lists these fields."""

    input: list[str] = option(text="input files or folders, split into train/val by --val-fraction", factory=list)
    splits: list[str] = option(
        text="your own split files instead of --input: train=PATH val=PATH (repeatable)", factory=list
    )
    out_dir: str = option(DEFAULT_OUT_DIR, "output folder", aliases=["--out"])
    image_root: str | None = option(None, "folder relative image paths start from (default: each input's folder)")
    image_column: str | None = option(None, "column with the image")
    question_column: str | None = option(None, "column with the question")
    answer_column: str | None = option(None, "column with the answer (a string or a list of answers)")
    id_column: str | None = option(None, "column with a unique question id (default: the row number)")
    category_column: str | None = option(None, "column with a category, kept for per-category scores")
    val_fraction: float = option(0.0, "share of the questions (whole images) that go to val")
    seed: int = option(0, "seed of the train/val split and the val subset")
    val_size: int = option(500, "questions of val (whole images) in val_subset.json, scored between epochs")
    prompt_suffix: str = option(DEFAULT_PROMPT_SUFFIX, "line appended to every question ('' for none)")
    skip_bad_questions: bool = option(False, "drop rows with an empty question or an <image> tag")
    skip_bad_answers: bool = option(False, "drop rows without a usable answer")
    skip_duplicates: bool = option(False, "drop repeated question ids (the first copy stays)")
    skip_bad_images: bool = option(False, "drop rows whose image is missing or unreadable")
    skip_shared_images: bool = option(False, "with --splits: drop train rows whose image val also uses")
    image_check: bool = option(True, "decode every image (off: only checks that the files exist)")
    workers: int | None = option(None, "threads for the image check (default: 4 per CPU, max 32)")
    progress: bool = option(True, "progress bars (shown on a terminal only)")


def find_columns(table: Table, config: VqaConfig) -> tuple[dict[str, str | None], list[str]]:
    """Role -> column name for a table, and the problems (a column not found)."""
    by_lower = {name.lower(): name for name in table.names}
    given = {
        "image": config.image_column,
        "question": config.question_column,
        "answer": config.answer_column,
        "id": config.id_column,
        "category": config.category_column,
    }
    found: dict[str, str | None] = {}
    problems = []
    for role, wanted in given.items():
        if wanted is not None:
            found[role] = wanted if wanted in table.names else by_lower.get(wanted.lower())
            if found[role] is None:
                problems.append(
                    f"{table.path}: no column {wanted!r} (--{role}-column); it has {', '.join(table.names)}"
                )
            continue
        found[role] = next((by_lower[name] for name in COLUMN_NAMES[role] if name in by_lower), None)
        if found[role] is None and role in REQUIRED_ROLES:
            problems.append(
                f"{table.path}: no {role} column (looked for {', '.join(COLUMN_NAMES[role])}); "
                f"it has {', '.join(table.names) or 'no columns'}: name it with --{role}-column"
            )
    return found, problems


def parse_answers(value: Any) -> list[str | None] | None:
    """Answers from a cell: a string (or a JSON list in a string), a number, a list; None if empty."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("[") and text.endswith("]"):
            try:
                parsed = json.loads(text)
            except (json.JSONDecodeError, RecursionError):
                return [value]
            if isinstance(parsed, list):
                return [answer_text(item) for item in parsed]
        return [value] if text else []
    if isinstance(value, (list, tuple)):
        return [answer_text(item) for item in value]
    text = answer_text(value)
    return [text] if text is not None else [None]


def _question_id(value: Any) -> int | str:
    """Ids as ints where they are whole numbers, else text."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    text = str(value).strip()
    return int(text) if text.isdigit() and (text == "0" or not text.startswith("0")) else text


# --------------------------------------------------------------------------
# The generic conversion.
# --------------------------------------------------------------------------


def _check_config(config: VqaConfig) -> list[tuple[str, Path]]:
    """(split, input path) pairs; every problem with the options is raised together."""
    problems = []
    entries: list[tuple[str, Path]] = []
    if bool(config.input) == bool(config.splits):
        problems.append("give --input PATH... (split by --val-fraction) or --splits train=PATH val=PATH, not both")
    entries += [("all", Path(p)) for p in config.input]
    for item in config.splits:
        name, _, value = item.partition("=")
        name = {"validation": "val", "test": "val"}.get(name, name)
        if name not in SPLITS or not value:
            problems.append(f"--splits entries look like train=PATH or val=PATH, got {item!r}")
        else:
            entries.append((name, Path(value)))
    if not 0 <= config.val_fraction < 1:
        problems.append(f"--val-fraction must be in [0, 1), got {config.val_fraction}")
    if config.splits and config.val_fraction:
        problems.append("--val-fraction splits --input; with --splits give a val file instead")
    problems += option_problems(config.val_size, config.workers)
    if config.image_root and not Path(config.image_root).is_dir():
        problems.append(f"--image-root {config.image_root} is not a folder")
    for _, path in entries:
        if not path.exists():
            problems.append(f"missing input {path}")
    raise_option_problems(problems)
    return entries


def _read_samples(
    config: VqaConfig,
    entries: list[tuple[str, Path]],
    issues: list[Issue],
    sources: list[EmbeddedSource],
) -> tuple[list[Sample], Path | None, list[str]]:
    """Every row of every input as a Sample; (samples, the common image root, notes)."""
    import pyarrow as pa

    tables: list[tuple[str, Table]] = []
    problems: list[str] = []
    for split, path in entries:
        try:
            tables += [(split, table) for table in read_tables(path, config.image_root)]
        except ConversionError as error:
            problems.append(str(error))
    found_by_table = []
    for _, table in tables:
        found, missing = find_columns(table, config)
        problems += missing
        found_by_table.append(found)
    if problems:
        raise ConversionError("cannot read the input:\n" + "\n".join(f"- {p}" for p in problems))
    files: dict[tuple[Path, str], Path] = {}
    samples: list[Sample] = []
    notes: list[str] = []
    counter = 0
    for (split, table), found in zip(tables, found_by_table, strict=True):
        image_column = found["image"]
        assert image_column is not None
        embedded = False
        if table.arrow:
            column_type = arrow_column_type(table.path, image_column)
            embedded = pa.types.is_binary(column_type) or pa.types.is_large_binary(column_type)
            if pa.types.is_struct(column_type):
                # datasets' Image feature: {bytes, path}; paths only when no row has bytes.
                embedded = struct_has_bytes(table.path, image_column, column_type)
        columns = [name for role, name in found.items() if name and not (role == "image" and embedded)]
        values = table.read(list(dict.fromkeys(columns)))
        source_index = len(sources)
        if embedded:
            sources.append(EmbeddedSource(table.path, image_column, table.image_root))
        used = {role: name for role, name in found.items() if name}
        notes.append(
            f"{table.path.name}: {table.num_rows()} rows; columns "
            + ", ".join(f"{role}={name}" for role, name in used.items())
            + (" (embedded images)" if embedded else "")
        )
        id_column, category_column = found["id"], found["category"]
        rows = len(values[found["question"]])  # type: ignore[index]
        for row in range(rows):
            where = table.where(row)
            question_id = _question_id(values[id_column][row]) if id_column else counter
            counter += 1
            raw_question = values[found["question"]][row]  # type: ignore[index]
            category = values[category_column][row] if category_column else None
            sample = Sample(
                question_id=question_id if question_id != "" else f"row{counter - 1}",
                question="" if raw_question is None else str(raw_question),
                answers=parse_answers(values[found["answer"]][row]),  # type: ignore[index]
                question_type="" if category is None else str(category),
                split=split,
                source_file=str(table.path),
                where=where,
            )
            samples.append(sample)
            if sample.answers is None:
                sample.answers = []
            if embedded:
                sample.embedded = (source_index, row)
                continue
            image = values[image_column][row]
            if isinstance(image, dict):
                image = image.get("path")
            if not isinstance(image, str) or not image.strip():
                flag_sample(issues, sample, "bad_image", "no image in the row")
                continue
            key = (table.image_root, image)
            if key not in files:  # rows often share an image; Path objects are slow to build
                files[key] = Path(os.path.abspath(os.path.join(table.image_root, image.strip())))
            sample.image_file = files[key]
    roots = {Path(os.path.abspath(table.image_root)) for _, table in tables}
    common = (
        Path(os.path.abspath(config.image_root)) if config.image_root else (roots.pop() if len(roots) == 1 else None)
    )
    return samples, common, notes


def _relative_image(file: Path, root: Path | None) -> str:
    """The record's image path: relative to the image folder when under it, else absolute."""
    path = str(file)  # already absolute
    prefix = os.path.join(str(root), "") if root is not None else None
    if prefix is not None and path.startswith(prefix):
        path = path[len(prefix) :]
    return path.replace(os.sep, "/")


def _split_by_fraction(samples: list[Sample], fraction: float, seed: int) -> tuple[list[Sample], list[Sample]]:
    """(train, val): whole images drawn with ``seed`` into val until ``fraction`` of the questions."""
    wanted = round(fraction * len(samples))
    val, train = carve_subset(samples, wanted, seed)
    return train, val


def convert(config: VqaConfig) -> ConversionSummary:
    """Convert the inputs as ``config`` says and write the outputs; see the module docstring.

    Raises ConversionError (listing every problem at once) when the options are
    wrong or the input has problems that no --skip-* flag covers; nothing is
    written then (embedded images this run extracted are removed again).
    """
    with new_files_removed_on_error(Path(config.out_dir) / IMAGES_DIR):
        return _convert(config)


def _convert(config: VqaConfig) -> ConversionSummary:
    entries = _check_config(config)
    issues: list[Issue] = []
    sources: list[EmbeddedSource] = []
    samples, image_root, notes = _read_samples(config, entries, issues, sources)
    by_split: dict[str, list[Sample]] = {}
    for sample in samples:
        by_split.setdefault(sample.split, []).append(sample)
    check_text(by_split, issues)
    out_dir = Path(config.out_dir)
    skipped = skipped_kinds(config)
    kept = [s for s in samples if s.problem is None]
    progress = None if config.progress else False
    if sources:
        image_root = Path(os.path.abspath(out_dir / IMAGES_DIR))
    relative: dict[Path, str] = {}
    for sample in kept:
        if sample.image_file is not None:
            if sample.image_file not in relative:
                relative[sample.image_file] = _relative_image(sample.image_file, image_root)
            sample.image = sample.image_key = relative[sample.image_file]
    check_image_files(kept, config.image_check, config.workers, progress, issues)
    will_fail = any(issue.kind not in skipped for issue in issues)
    extract_embedded(
        [s for s in kept if s.problem is None],
        sources,
        out_dir / IMAGES_DIR,
        decode=config.image_check,
        write=not will_fail,
        to_jpeg=False,
        workers=config.workers,
        progress=progress,
        issues=issues,
    )
    if "val" in by_split and "train" in by_split:
        val_images = {s.image_key for s in by_split["val"] if s.problem is None}
        for sample in by_split["train"]:
            if sample.problem is None and sample.image_key in val_images:
                flag_sample(issues, sample, "shared_image", f"{sample.image} is also a val image")
    raise_failing(issues, skipped, "VQA")
    kept = [s for s in samples if s.problem is None]
    kept.sort(key=lambda s: (s.split, id_sort_key(s.question_id)))
    if not samples:
        raise ConversionError(f"{', '.join(map(str, config.input or [])) or 'the input'}: no rows, nothing to convert")
    if config.input:
        train, val = _split_by_fraction(kept, config.val_fraction, config.seed)
        outputs = {"train": train, **({"val": val} if config.val_fraction else {})}
        if config.val_fraction and not val:
            raise ConversionError(
                f"--val-fraction {config.val_fraction} of {len(kept)} questions puts no image in val; raise it"
            )
        if not train:
            raise ConversionError(f"--val-fraction {config.val_fraction} leaves no question for train")
    else:
        outputs = {split: [s for s in kept if s.split == split] for split in SPLITS if split in by_split}
    val_subset = None
    if "val" in outputs and config.val_size:
        size = min(config.val_size, len(outputs["val"]))
        subset, _ = carve_subset(outputs["val"], size, config.seed)
        outputs["val_subset"] = subset
        val_subset = {
            "from": "val",
            "seed": config.seed,
            "requested": config.val_size,
            "size": len(subset),
        }
    elif "val" not in outputs:
        notes.append("no val split: give --val-fraction or --splits val=PATH to evaluate between epochs")
    if image_root is None:
        notes.append(
            "the inputs sit in different folders: records carry absolute image paths "
            "(give --image-root to make them relative)"
        )
    written = write_outputs(out_dir, outputs, config.prompt_suffix, "val")
    summary = ConversionSummary(
        source="files",
        out_dir=str(out_dir.resolve()),
        image_folder=str(image_root or "/"),
        image_check="decoded" if config.image_check else "presence only",
        prompt_suffix=config.prompt_suffix,
        splits={name: split_stats(group) for name, group in outputs.items()},
        files=written,
        skipped=skipped_summary(issues),
        filters={"val_fraction": config.val_fraction, "seed": config.seed},
        val_subset=val_subset,
        notes=notes,
    )
    write_atomic(out_dir / "summary.json", dump_json(summary.to_dict()))
    return summary


_EXAMPLES = """\
examples:
  python -m llava.data.vqa --input my_vqa.csv --image-root images/ --out playground/data/my_vqa \\
      --val-fraction 0.1 --seed 0
  python -m llava.data.vqa --splits train=train.jsonl val=val.jsonl --out playground/data/my_vqa
  python -m llava.data.vqa --input my_imagefolder/ --val-fraction 0.1 --answer-column label

then train with --data_path OUT/train.json --image_folder <the folder the summary names>,
and score with python -m llava.eval.eval_okvqa --answers FILE --annotations OUT/val_annotations.json.
See docs/CUSTOM_DATA.md.
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the converter; prints the summary, or every problem on stderr. Returns the exit status."""
    parser = build_parser(
        VqaConfig,
        "python -m llava.data.vqa",
        "Convert short-answer VQA data (JSON, JSONL, CSV/TSV, Parquet, Arrow, save_to_disk or "
        "imagefolder) to LLaVA training data plus the model_vqa question file and the scorer's "
        "annotations. Every input problem is reported at once; never uses the network.",
        _EXAMPLES,
    )
    return run_converter(parser, convert, argv, "VQA data")


if __name__ == "__main__":
    from llava.entry import run

    sys.exit(run(main))
