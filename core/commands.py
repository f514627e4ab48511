"""What every management command of ours needs (Zulip's ``zerver/lib/management.py``
habit): a base command whose usage errors exit 2 from the command line and from
``call_command`` alike, a manual-style description, the ``-v`` option on
subcommands, tables, plurals, a confirmation, and the argument types for counts,
durations and instants.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, NoReturn

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from core.timespans import parse_duration, parse_instant

__all__ = [
    "SOME_FAILED",
    "TIME_HELP",
    "USAGE_ERROR",
    "Command",
    "UsageParser",
    "confirm",
    "count_arg",
    "describe",
    "duration_arg",
    "instant_arg",
    "plural",
    "table",
    "time_range_options",
    "verbosity_option",
]

USAGE_ERROR = 2  # bad usage: wrong arguments, unknown IDs, nothing selected
SOME_FAILED = 1  # some work failed, was skipped for a reason to fix, or was cancelled

TIME_HELP = "a duration ago (30m, 2h, 3d, 1w) or an ISO date/time (2026-11-20, 2026-11-20T10:00Z)"


def usage_error(parser: argparse.ArgumentParser, message: str) -> NoReturn:
    """Exit status 2 from the command line, CommandError(returncode=2) from call_command."""
    if getattr(parser, "called_from_command_line", False):
        parser.print_usage(sys.stderr)
        parser.exit(USAGE_ERROR, f"{parser.prog}: error: {message}\n")
    raise CommandError(f"Error: {message}", returncode=USAGE_ERROR)


class UsageParser(CommandParser):
    """A subcommand's parser: its errors are usage errors (exit 2)."""

    def error(self, message: str) -> NoReturn:
        usage_error(self, message)


class Command(BaseCommand):
    """Base of our commands: ``help`` shown as written (a manual), ``epilog`` under
    every parser, usage errors exit 2. Subcommands: ``self.subcommands(parser)``."""

    epilog: str | None = None

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        if self.epilog:
            kwargs.setdefault("epilog", self.epilog)
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.error = lambda message: usage_error(parser, message)  # type: ignore[method-assign]
        return parser

    def subcommands(self, parser: CommandParser, names: Sequence[str]) -> Any:
        """The subparsers action; ``names`` make its metavar ``{a,b,c}``."""
        return parser.add_subparsers(
            dest="action",
            required=True,
            metavar="{" + ",".join(names) + "}",
            parser_class=UsageParser,
            title="subcommands",
        )

    def subcommand(
        self, sub: Any, name: str, *, help: str, description: str
    ) -> argparse.ArgumentParser:
        """One subcommand's parser, described like the command itself."""
        return sub.add_parser(  # type: ignore[no-any-return]
            name,
            help=help,
            description=description,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            epilog=self.epilog,
        )


def describe(text: str, *examples: str) -> str:
    """A description: paragraphs wrapped to 79 columns, then examples."""
    paragraphs = [textwrap.fill(" ".join(par.split()), 79) for par in text.split("\n\n")]
    if examples:
        paragraphs.append("examples:\n" + "\n".join(f"  {e}" for e in examples))
    return "\n\n".join(paragraphs)


def verbosity_option(parser: argparse.ArgumentParser, help: str) -> None:
    """``-v`` on a subcommand too, so ``cmd sub -v 2`` works as well as ``cmd -v 2 sub``."""
    parser.add_argument(
        "-v",
        "--verbosity",
        type=int,
        choices=[0, 1, 2, 3],
        default=argparse.SUPPRESS,
        help=help,
    )


def time_range_options(group: Any, *, what: str) -> None:
    """``--since WHEN`` and ``--until WHEN`` (see TIME_HELP) on a parser or an
    argument group; ``what`` names the time they bound ("Created", "Received")."""
    group.add_argument(
        "--since", type=instant_arg, metavar="WHEN", help=f"{what} at or after WHEN: {TIME_HELP}."
    )
    group.add_argument(
        "--until", type=instant_arg, metavar="WHEN", help=f"{what} before WHEN: {TIME_HELP}."
    )


def table(rows: Sequence[Sequence[str]], *, right: frozenset[int] = frozenset()) -> str:
    """Columns padded to their widest cell; the columns in ``right`` right-aligned."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for r in rows:
        cells = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def plural(count: int, one: str, many: str | None = None) -> str:
    """``plural(3, "entry", "entries")`` -> ``"3 entries"`` (thousands separated)."""
    return f"{count:,} {one if count == 1 else (many or one + 's')}"


def confirm(question: str, *, noinput: bool) -> None:
    """Ask; anything but yes (or no answer at all) cancels with exit status 1."""
    if noinput:
        return
    try:
        answer = input(f"{question} [y/N] ")
    except EOFError:
        answer = ""
    if answer.strip().lower() not in ("y", "yes"):
        raise CommandError(
            "cancelled; nothing was changed (use --noinput to skip this question)",
            returncode=SOME_FAILED,
        )


def count_arg(text: str) -> int:
    """An argparse type: a whole number, 0 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 or more")
    return value


def duration_arg(text: str) -> timedelta:
    """An argparse type: ``30m``, ``2h``, ``30d``, ``1w``."""
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def instant_arg(text: str) -> datetime:
    """An argparse type: a duration ago, or an ISO date/time (see TIME_HELP)."""
    try:
        return parse_instant(text, now=timezone.now())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
