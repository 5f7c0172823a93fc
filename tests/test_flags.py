"""llava.flags: a config dataclass's command line (both spellings, ``--x / --no-x``, defaults shown)."""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from llava.data import aokvqa, okvqa, vqa
from llava.flags import Parser, dataclass_parser, parse_dataclass


@dataclass
class Example:
    out_dir: Path = field(default=Path("out"), metadata={"help": "output folder", "aliases": ["--out"]})
    splits: list[str] = field(default_factory=lambda: ["train", "val"], metadata={"help": "splits"})
    val_size: int = field(default=0, metadata={"help": "subset size"})
    skip_bad_images: bool = field(default=False, metadata={"help": "drop bad images"})
    check_images: bool = field(default=True, metadata={"help": "decode images", "flag": "image_check"})
    progress: bool | None = field(default=None, metadata={"help": "progress bar (default: on a terminal only)"})


def parse(*argv: str) -> Example:
    return parse_dataclass(dataclass_parser(Example, "example", "an example"), Example, list(argv))


def test_nothing_given_keeps_every_dataclass_default():
    assert parse() == Example()


@pytest.mark.parametrize("spelling", ["--val-size", "--val_size"])
def test_both_spellings_are_accepted(spelling):
    assert parse(spelling, "7").val_size == 7


def test_typed_values_and_visible_alias():
    config = parse("--out", "folder")
    assert config.out_dir == Path("folder") and isinstance(config.out_dir, Path)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--skip-bad-images"], True),
        (["--skip_bad_images"], True),
        (["--skip-bad-images", "--no-skip-bad-images"], False),
        (["--no_skip_bad_images"], False),
    ],
)
def test_on_off_flag(argv, expected):
    assert parse(*argv).skip_bad_images is expected


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--no-image-check"], False),
        (["--image-check"], True),
        # the field's own name, the converters' earlier spelling, is still accepted
        (["--no-check-images"], False),
        (["--no_check_images"], False),
        (["--check-images"], True),
    ],
)
def test_renamed_flag_keeps_the_field_name_as_a_hidden_spelling(argv, expected):
    assert parse(*argv).check_images is expected


@pytest.mark.parametrize(("argv", "expected"), [([], None), (["--progress"], True), (["--no-progress"], False)])
def test_optional_bool_stays_undecided_when_not_given(argv, expected):
    assert parse(*argv).progress is expected


def test_list_flag_replaces_the_default_and_may_repeat():
    assert parse("--splits", "val").splits == ["val"]
    assert parse("--splits", "train", "--splits", "val").splits == ["train", "val"]


def test_on_off_flag_takes_no_value():
    with pytest.raises(SystemExit):
        parse("--skip-bad-images", "true")


def test_help_lists_one_entry_per_flag_with_defaults():
    text = dataclass_parser(Example, "example", "an example").format_help()
    assert "--skip-bad-images, --no-skip-bad-images" in text
    assert "--image-check, --no-image-check" in text
    assert "(default: false)" in text and "(default: train val)" in text and "(default: out)" in text
    assert "check-images" not in text and "_" not in re.sub(r"[A-Z_]{3,}", "", text.split("options:")[1])
    assert "default: on a terminal only" in text and "(default: None)" not in text


@pytest.mark.parametrize("module", [okvqa, aokvqa, vqa], ids=lambda module: module.__name__)
def test_converters_help_shows_hyphen_spellings_and_on_off_pairs(module, capsys):
    with pytest.raises(SystemExit):
        module.main(["--help"])
    text = capsys.readouterr().out
    options = text.split("options:")[1].split("examples:")[0]
    flags = re.findall(r"(?<![\w-])--[\w-]+", options)
    assert flags and not [flag for flag in flags if "_" in flag], flags
    assert "--image-check, --no-image-check" in options
    assert "--no-image-check" in text  # the spelling the docs use
    for on in re.findall(r"^  (--[\w-]+), --no-", options, flags=re.MULTILINE):
        assert f"{on}, --no-{on[2:]}" in options


def test_parser_accepts_the_other_spelling_of_every_flag():
    parser = Parser(prog="example")
    parser.add_argument("--model-path")
    parser.add_argument("--top_p", type=float)
    parser.add_argument("--load-4bit", action="store_true")
    args = parser.parse_args(["--model_path", "m", "--top-p=0.5", "--load_4bit"])
    assert (args.model_path, args.top_p, args.load_4bit) == ("m", 0.5, True)
    # --help keeps the declared spelling; after "--" nothing is rewritten
    assert "--model-path" in parser.format_help() and "--model_path" not in parser.format_help()
    parser.add_argument("rest", nargs="*")
    assert parser.parse_args(["--", "--model_path"]).rest == ["--model_path"]
    with pytest.raises(SystemExit):
        parser.parse_args(["--model_paths", "m"])


ENTRY_POINTS = [
    "llava.eval.model_vqa",
    "llava.eval.model_vqa_loader",
    "llava.eval.run_llava",
    "llava.eval.eval_vqa",
    "llava.eval.eval_okvqa",
    "llava.serve.cli",
    "llava.serve.gradio_web_server",
    "llava.serve.eval_browser",
    "llava.export_hf",
    "llava.data.okvqa",
    "llava.data.aokvqa",
]


@pytest.mark.parametrize("module", ENTRY_POINTS)
def test_entry_point_parsers_accept_both_spellings(module):
    parser = importlib.import_module(module).build_parser()
    assert isinstance(parser, Parser)
    declared = {flag for action in parser._actions for flag in action.option_strings if flag.startswith("--")}
    for flag in declared:
        other = "--" + (flag[2:].replace("-", "_") if "-" in flag[2:] else flag[2:].replace("_", "-"))
        assert parser._respell(other) in declared, (module, other)


def test_every_command_line_is_a_flags_parser():
    """No entry point builds a bare argparse parser (it would refuse the other spelling)."""
    root = Path(__file__).resolve().parents[1]
    bare = [
        str(path.relative_to(root))
        for folder in ("llava", "scripts")
        for path in (root / folder).rglob("*.py")
        if "argparse.ArgumentParser(" in path.read_text(encoding="utf-8") and path.name != "flags.py"
    ]
    assert not bare, bare
