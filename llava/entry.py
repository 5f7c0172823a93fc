"""The one place an entry point turns a user's mistake into one line, and a bug into a traceback.

Every command-line entry point runs its ``main`` through :func:`run`. A user's mistake ends
with ``error: <what>`` on one line of stderr and exit status 2; anything else is a bug and
keeps its traceback. ``--debug`` (or ``LLAVA_DEBUG=1``) shows the traceback for everything.

A user's mistake is:

- an ``OSError`` (a missing path, an existing output, a file where a folder goes, a
  permission, a tokenizer or model folder that is not one, no network for a URL);
- a ``ValueError`` / ``KeyError`` raised by this project's own code (its messages name the
  file or flag and what to do), and the project's own error types (all ``ValueError``s).
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

EXIT_USAGE = 2
DEBUG_FLAG = "--debug"
_PROJECT = tuple(str(Path(__file__).resolve().parents[1] / part) for part in ("llava", "scripts"))


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` shows every flag's default (unless its text already names it)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        no_default = action.default is None or action.default is False or action.default == argparse.SUPPRESS
        if "default" in text.lower() or no_default or not action.option_strings:
            return action.help
        return super()._get_help_string(action)


class ExamplesHelpFormatter(HelpFormatter, argparse.RawDescriptionHelpFormatter):
    """:class:`HelpFormatter` that keeps the description's and epilog's own line breaks (examples)."""


# Library deprecation notes that this project's calls do not cause and cannot avoid: peft reads
# transformers' `is_gradient_checkpointing` on every PeftModel, DeepSpeed calls torch's
# `all_gather_into_tensor`. Each is hidden by its exact text; anything else still shows.
KNOWN_LIBRARY_NOTES = (
    r"`is_gradient_checkpointing` is deprecated",
    r"`torch\.distributed\.all_gather_into_tensor` is deprecated",
)


def quiet_known_library_notes() -> None:
    """Hide :data:`KNOWN_LIBRARY_NOTES` in this process (entry points call it; ``LLAVA_DEBUG=1`` keeps them)."""
    import warnings

    if debug_requested([]):
        return
    for message in KNOWN_LIBRARY_NOTES:
        warnings.filterwarnings("ignore", message=message, category=FutureWarning)


def debug_requested(argv: Sequence[str]) -> bool:
    return DEBUG_FLAG in argv or os.environ.get("LLAVA_DEBUG", "").lower() in ("1", "true", "yes")


def _raised_by_project(error: BaseException) -> bool:
    frames = traceback.extract_tb(error.__traceback__)
    return bool(frames) and frames[-1].filename.startswith(_PROJECT)


def is_user_mistake(error: BaseException) -> bool:
    """Whether ``error`` is a mistake the user can fix from its message (see the module docstring)."""
    if isinstance(error, OSError):
        return True
    return isinstance(error, (ValueError, KeyError)) and _raised_by_project(error)


def one_line(error: BaseException) -> str:
    """``error: <message>`` with the message's lines joined (a path or flag stays in it)."""
    text = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
    if isinstance(error, OSError) and error.filename and str(error.filename) not in str(text):
        text = f"{error.filename}: {error.strerror or text}"
    text = " ".join(part.strip() for part in str(text).splitlines() if part.strip()) or type(error).__name__
    return f"error: {text}"


def run(main: Callable[[list[str]], int | None], argv: Sequence[str] | None = None, keep_debug: bool = False) -> int:
    """``main(argv)``'s exit status; a user's mistake -> one line on stderr and :data:`EXIT_USAGE`.

    ``--debug`` is taken out of ``argv`` unless ``keep_debug`` (a command with its own ``--debug``).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    debug = debug_requested(args)
    if not debug:
        quiet_known_library_notes()
    if not keep_debug:
        args = [arg for arg in args if arg != DEBUG_FLAG]
    try:
        status = main(args)
    except SystemExit:
        raise
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        if debug or not is_user_mistake(error):
            raise
        print(one_line(error), file=sys.stderr)
        return EXIT_USAGE
    return 0 if status is None or not isinstance(status, int) else status
