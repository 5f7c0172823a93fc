"""A config dataclass's command line: one flag per field, both spellings, on/off flags as ``--x / --no-x``.

The converters describe their options as dataclasses (the Python API) and get their command
line from here. Each field ``some_name`` becomes ``--some-name`` (the spelling ``--help`` and
the docs show) and ``--some_name`` (accepted, not listed); a ``bool`` field becomes one entry
``--some-name, --no-some-name`` with one help text (a ``bool | None`` field keeps ``None``,
"decide later", when neither is given); a list field takes one or more values and may repeat.
A field's ``metadata`` holds its help (``"help"``) and may name the flag (``"flag"``), visible
aliases (``"aliases"``), hidden earlier names (``"hidden"``) and ``choices``.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Sequence
from typing import Any

__all__ = ["OnOffAction", "Parser", "dataclass_parser", "parse_dataclass"]


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` that accepts every flag with ``-`` or ``_`` between its words.

    ``--help`` lists the spelling each flag was declared with (upstream's, where there is one);
    the other spelling is rewritten to it before parsing.
    """

    def _respell(self, arg: str) -> str:
        flag, equals, value = arg.partition("=")
        if not flag.startswith("--") or flag in self._option_string_actions:
            return arg
        for other in ("--" + flag[2:].replace("_", "-"), "--" + flag[2:].replace("-", "_")):
            if other in self._option_string_actions:
                return other + equals + value
        return arg

    def parse_known_args(self, args=None, namespace=None):
        import sys

        args = list(sys.argv[1:] if args is None else args)
        end = args.index("--") if "--" in args else len(args)
        respelled = [self._respell(arg) for arg in args[:end]] + args[end:]
        return super().parse_known_args(respelled, namespace)


class OnOffAction(argparse.Action):
    """``--x`` sets True, ``--no-x`` (any option string starting ``--no``) sets False."""

    def __init__(self, option_strings: Sequence[str], dest: str, negatives: Sequence[str] = (), **kwargs: Any):
        self.negatives = frozenset(negatives)
        super().__init__(option_strings, dest, nargs=0, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, option_string not in self.negatives)

    def format_usage(self) -> str:
        return " | ".join(self.option_strings[:2])


def _flag(name: str) -> str:
    """``--some-name`` for ``some_name`` (:class:`Parser` also takes ``--some_name``)."""
    return "--" + name.replace("_", "-")


def _negative(flag: str) -> str:
    return f"--no-{flag[2:]}"


def _unwrap_optional(kind: Any) -> Any:
    """``T`` for ``T | None``, else ``kind``."""
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        members = [member for member in typing.get_args(kind) if member is not type(None)]
        if len(members) == 1:
            return members[0]
    return kind


def _default_text(default: Any) -> str:
    if isinstance(default, str):
        return repr(default) if default == "" or default != default.strip() else default
    if isinstance(default, (list, tuple)):
        return " ".join(str(item) for item in default)
    return str(default).lower() if isinstance(default, bool) else str(default)


def _help(text: str, default: Any) -> str:
    """``text`` with ``(default: ...)`` added when there is one to show and ``text`` does not say it."""
    if default is None or default == [] or "default" in text.lower():
        return text
    return f"{text} (default: {_default_text(default)})"


def _default(item: dataclasses.Field) -> Any:
    if item.default_factory is not dataclasses.MISSING:
        return item.default_factory()
    return None if item.default is dataclasses.MISSING else item.default


def dataclass_parser(config_class: type, prog: str, description: str, epilog: str = "") -> argparse.ArgumentParser:
    """An ``argparse`` parser with one flag per field of ``config_class`` (see the module docstring).

    ``--help`` shows the hyphen spelling and each default; :class:`Parser` takes the underscore
    spelling, and each ``hidden`` earlier name is registered without being listed.
    """
    parser = Parser(
        prog=prog,
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    hints = typing.get_type_hints(config_class)
    for item in dataclasses.fields(config_class):
        meta = dict(item.metadata)
        text, name = meta.pop("help", ""), meta.pop("flag", item.name)
        aliases, earlier = list(meta.pop("aliases", [])), list(meta.pop("hidden", []))
        if name != item.name:
            earlier.append(item.name)
        flag = _flag(name)
        hidden = [_flag(old) for old in dict.fromkeys(earlier) if _flag(old) != flag]
        kind, default = _unwrap_optional(hints[item.name]), _default(item)
        if kind is bool:
            visible = [flag, _negative(flag), *aliases]
            negatives = [_negative(flag), *(alias for alias in aliases if alias.startswith("--no"))]
            parser.add_argument(
                *visible,
                dest=item.name,
                action=OnOffAction,
                negatives=negatives,
                default=argparse.SUPPRESS,
                help=_help(text, default),
            )
            for spelling in hidden:
                parser.add_argument(
                    spelling,
                    _negative(spelling),
                    dest=item.name,
                    action=OnOffAction,
                    negatives=[_negative(spelling)],
                    default=argparse.SUPPRESS,
                    help=argparse.SUPPRESS,
                )
            continue
        options: dict[str, Any] = {"dest": item.name, **meta}
        if typing.get_origin(kind) is list:
            (element,) = typing.get_args(kind) or (str,)
            options.update(nargs="+", type=element, action="extend")  # repeatable: --splits a --splits b
        elif isinstance(kind, type):
            options["type"] = kind  # int, float, str, Path
        parser.add_argument(flag, *aliases, default=argparse.SUPPRESS, help=_help(text, default), **options)
        if hidden:
            parser.add_argument(*hidden, default=argparse.SUPPRESS, help=argparse.SUPPRESS, **options)
    return parser


def parse_dataclass(parser: argparse.ArgumentParser, config_class: type, argv: Sequence[str] | None) -> Any:
    """``config_class`` from ``argv`` parsed by ``parser`` (a :func:`dataclass_parser`)."""
    # Every flag's argparse default is SUPPRESS: what was not given takes the dataclass's default.
    namespace = parser.parse_args(list(argv) if argv is not None else None)
    return config_class(**vars(namespace))
