"""The command line's vocabulary, shared by every package's ``commands.py``: numeric flags checked
when they are parsed (the valid range in the message), and flags derived from a config dataclass.

Only command modules import this; library code takes configs, never an ``argparse.Namespace``.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from dataclasses import MISSING, fields
from typing import Any, get_type_hints

INF = math.inf


def _bound_text(lo: float, hi: float, lo_open: bool, hi_open: bool) -> str:
    left = "(" if lo_open or lo == -INF else "["
    right = ")" if hi_open or hi == INF else "]"
    show = {INF: "inf", -INF: "-inf"}
    return f"{left}{show.get(lo, lo)}, {show.get(hi, hi)}{right}"


def number(
    kind: type = float,
    lo: float = -INF,
    hi: float = INF,
    *,
    lo_open: bool = False,
    hi_open: bool = False,
) -> Callable[[str], Any]:
    """An argparse ``type``: the text as ``kind`` (int or float), finite and within the range
    (``lo_open`` / ``hi_open`` leave an end out); otherwise the flag's error names the range."""
    span = _bound_text(lo, hi, lo_open, hi_open)
    noun = "a whole number" if kind is int else "a number"

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"{text!r} is not {noun} in {span}") from None
        below = value <= lo if lo_open else value < lo
        above = value >= hi if hi_open else value > hi
        if not math.isfinite(value) or below or above:
            raise argparse.ArgumentTypeError(f"{text} is out of range: give {noun} in {span}")
        return value

    parse.__name__ = f"{kind.__name__} in {span}"
    parse.range = span  # type: ignore[attr-defined]  (the parser-walking test reads it)
    parse.bounds = (lo, hi)  # type: ignore[attr-defined]  (so a test can step outside them)
    return parse


# The ranges most flags need.
positive_int = number(int, 1)
count = number(int, 0)  # zero allowed: "none of these"
positive_float = number(float, 0, lo_open=True)
non_negative_float = number(float, 0)
fraction = number(float, 0, 1, hi_open=True)  # dropout and the like: [0, 1)
unit = number(float, 0, 1)  # opacities, weights: [0, 1]
any_int = number(int)  # seeds
sample_rate = number(int, 1000)  # Hz: below 1 kHz little of any sound is left


def field_type(kind: Any, bounds: tuple | None) -> Callable[[str], Any] | None:
    """The checked argparse type of a config field of annotation ``kind`` (``int``, ``float``,
    ``X | None``, ``tuple[X, ...]``); ``bounds`` from the field's metadata, as ``number``'s
    arguments after kind."""
    args = getattr(kind, "__args__", ())
    base = next((t for t in (bool, int, float) if t == kind or t in args), None)
    if base in (None, bool):
        return None
    lo, hi, *opens = bounds or (-INF, INF)
    return number(
        base, lo, hi, lo_open=bool(opens and opens[0]), hi_open=len(opens) > 1 and opens[1]
    )


def _is_sequence(kind: Any) -> bool:
    return getattr(kind, "__origin__", None) in (tuple, list)


def add_dataclass_flags(
    parser: argparse.ArgumentParser,
    config: type,
    only: tuple[str, ...] | None = None,
    suppress_defaults: bool = False,
    skip: tuple[str, ...] = (),
) -> None:
    """One flag per field of the dataclass ``config`` (``--image-size`` for ``image_size``), with
    the field's ``help`` metadata and its default in the help; a numeric field is checked against
    its ``range`` metadata, a ``tuple[X, ...]`` field takes one or more values, a field without a
    default is a required flag. ``only`` / ``skip``: the fields to flag or to leave to hand-written
    flags (a positional, a ``WIDTHxHEIGHT``). ``suppress_defaults``: only the flags given land in
    the namespace (for configs resolved from several layers, as ``fnac train``'s)."""
    hints = get_type_hints(config)
    for f in fields(config):
        if (only is not None and f.name not in only) or f.name in skip:
            continue
        flag = "--" + f.name.replace("_", "-")
        kwargs: dict[str, Any] = {"dest": f.name}
        notes = []  # shown after the field's help: its range, its default
        kind = hints[f.name]
        if _is_sequence(kind):
            kwargs["nargs"] = "+"
            kind = kind.__args__[0]
        checked = field_type(kind, f.metadata.get("range"))
        if checked is not None:
            kwargs["type"] = checked
            if f.metadata.get("range"):
                notes.append(f"in {checked.range}")  # type: ignore[attr-defined]
        if f.metadata.get("choices"):
            kwargs["choices"] = f.metadata["choices"]
        if f.default is MISSING and f.default_factory is MISSING:  # type: ignore[misc]
            kwargs["required"] = True
        else:
            default = f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]
            kwargs["default"] = argparse.SUPPRESS if suppress_defaults else default
            shown = " ".join(map(str, default)) if isinstance(default, (tuple, list)) else default
            notes.append(f"default: {shown}")
        text = f.metadata.get("help", "")
        kwargs["help"] = f"{text} ({'; '.join(notes)})".strip() if notes else text
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, **kwargs)
        else:
            parser.add_argument(flag, **kwargs)


def dataclass_values(args: argparse.Namespace, config: type) -> dict[str, Any]:
    """The namespace's values of ``config``'s fields (those present), for ``config(**values)``."""
    names = {f.name for f in fields(config)}
    return {k: v for k, v in vars(args).items() if k in names}


class PlainHelp(argparse.RawDescriptionHelpFormatter):
    """Help as plain text: descriptions keep their line breaks, lose the docstrings' ``code``
    marks, and every option with a default says it (unless its help already does)."""

    def _format_text(self, text: str) -> str:
        return super()._format_text(text.replace("``", ""))

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        hidden = action.default is None or action.default is False
        shown = not hidden and action.default is not argparse.SUPPRESS and action.option_strings
        if shown and "default" not in text and not isinstance(action, argparse._VersionAction):
            text += " (default: %(default)s)"
        return text


def plain_help_everywhere(parser: argparse.ArgumentParser, subcommands) -> None:
    """Give ``parser`` and each of its ``subcommands`` (a subparsers action's ``choices``) plain
    help, and ``-v/--verbose`` after the command as well as before it."""
    parser.formatter_class = PlainHelp
    for command in subcommands.values():
        command.formatter_class = PlainHelp
        command.add_argument(
            "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="debug logging"
        )


def add_json_flag(parser: argparse.ArgumentParser, what: str) -> None:
    """``--json PATH``, with the one meaning every command gives it: write ``what`` to the file
    PATH as JSON."""
    parser.add_argument(
        "--json", dest="json_out", metavar="PATH", default=None, help=f"write {what} here (JSON)"
    )


def check_writable(*paths: str | None) -> None:
    """Refuse, before any work, an output path that is a folder, lies under a file, or lies in a
    folder this user cannot write (None passes): one line naming it. Missing folders are fine:
    the writers create them."""
    import os
    from pathlib import Path

    for path in paths:
        if path is None:
            continue
        target = Path(path)
        if target.is_dir():
            raise ValueError(f"{path} is a folder: give the name of a file to write")
        folder = target.parent
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        if not folder.is_dir():
            raise NotADirectoryError(f"cannot write {path}: {folder} is a file, not a folder")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise PermissionError(f"cannot write {path}: {folder} is not writable by you")


def write_json(path: str | None, payload: Any) -> None:
    """``--json PATH``'s output, and one ``wrote PATH`` line (nothing without a path)."""
    import json
    from pathlib import Path

    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(payload, indent=2) + "\n")
        print(f"wrote {path}")
