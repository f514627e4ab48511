"""The arguments of ``manage.py dlq`` (processing/management/commands/dlq.py):
the command's manual, each subcommand's description and options."""

from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import CommandParser

from core import commands
from core.commands import describe

__all__ = ["EXIT_CODES", "MANUAL", "dlq_arguments_add", "entry_id_arg"]

MANUAL = """\
Inspect and repair the dead-letter queue: the batches a processor plugin failed
on after all its retries (or, when bisection isolated them, just the events it
fails on). Each entry keeps the events as received, the plugin's name, the
error and the attempts. An entry stays `pending` until it is replayed (the
plugin succeeded on it) or discarded (kept for audit, never replayed).

A replay runs only the plugin that failed, with its CURRENT parameters (as the
admin or config.toml set them now), on the stored events and with the original
batch id, so the StorageProcessor can never count a batch twice.

A typical session, once the cause is fixed:

  manage.py dlq list                                # what is pending, newest first
  manage.py dlq show 42                             # one entry, its error and events
  manage.py dlq replay --plugin Geo --dry-run       # what a replay would do
  manage.py dlq replay --plugin Geo                 # do it (asks first; --noinput in scripts)
  manage.py dlq discard 43                          # give up on an entry, keep it for audit
  manage.py dlq purge --older-than 30d              # delete entries resolved long ago
  manage.py dlq purge --noinput                     # the age dlq.retention sets

Run `manage.py dlq SUBCOMMAND --help` for each subcommand's options.
"""

EXIT_CODES = """\
exit status:
  0  everything selected was done (or had already left the queue)
  1  some entries failed, or were skipped for a reason you must fix (a plugin
     missing or disabled), or you answered no to the confirmation
  2  bad usage: unknown option, malformed value, unknown ID, nothing selected
"""


def entry_id_arg(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an entry ID (IDs are the numbers `dlq list` shows)"
        ) from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not an entry ID (IDs start at 1)")
    return value


def dlq_arguments_add(command: commands.Command, parser: CommandParser) -> None:
    sub = command.subcommands(parser, ("list", "show", "replay", "discard", "purge"))
    _list_parser(command, sub)
    _show_parser(command, sub)
    _replay_parser(command, sub)
    _discard_parser(command, sub)
    _purge_parser(command, sub)


def _list_parser(command: commands.Command, sub: Any) -> None:
    ls = command.subcommand(
        sub,
        "list",
        help="List entries as a table (pending ones, newest first, by default).",
        description=describe(
            """List dead letters, newest first: ID, age, plugin, events, attempts,
            splits (how many times bisection halved the original batch to isolate
            them), status, and the first line of the error (the last replay's error
            when a replay failed). Pending entries only, unless --status says
            otherwise.""",
            "manage.py dlq list",
            "manage.py dlq list --plugin StorageProcessor --since 2h",
            "manage.py dlq list --status all --error timeout --json",
        ),
    )
    _filters(ls, status=True)
    ls.add_argument(
        "--limit",
        type=commands.count_arg,
        default=50,
        metavar="N",
        help="Show at most N entries (default 50; 0 = all).",
    )
    _common(ls)


def _show_parser(command: commands.Command, sub: Any) -> None:
    show = command.subcommand(
        sub,
        "show",
        help="Everything about one entry, its events pretty-printed.",
        description=describe(
            """Show one entry: status, batch id, plugin, splits, attempts, the full
            error message, its replay history and its events pretty-printed as
            JSON.""",
            "manage.py dlq show 42",
            "manage.py dlq show 42 --events 100",
            "manage.py dlq show 42 --json > entry-42.json",
        ),
    )
    show.add_argument("id", type=entry_id_arg, metavar="ID", help="The entry's ID.")
    show.add_argument(
        "--events",
        type=commands.count_arg,
        default=10,
        metavar="N",
        help="Print the first N events (default 10; 0 = none). --json prints them all.",
    )
    _common(show)


def _replay_parser(command: commands.Command, sub: Any) -> None:
    replay = command.subcommand(
        sub,
        "replay",
        help="Run the failed plugin again on pending entries.",
        description=describe(
            """Replay pending entries: run only the plugin that failed, with its
            current parameters, on the stored events and with the original batch id
            (so the StorageProcessor never counts a batch twice). Success marks the
            entry `replayed`; failure leaves it `pending` with the new error and one
            more attempt. Each entry gets one run, oldest first: replay again to
            retry.

            An entry whose plugin is no longer installed, or is disabled, is skipped
            with the reason and left untouched: enable the plugin and replay, or
            discard the entry. Two replays running at once (two commands, or the
            admin and a command) never replay the same entry twice.

            Select entries by IDs, by filters (they pick pending entries), or all
            pending ones with --all. Asks before replaying more than one entry
            unless --noinput. Prints a progress bar on a terminal and ends with one
            line: `replayed N, failed N, skipped N`.""",
            "manage.py dlq replay 42 43",
            "manage.py dlq replay --plugin StorageProcessor --since 1d --dry-run",
            "manage.py dlq replay --all --noinput",
        ),
    )
    _selection(replay, verb="replay")


def _discard_parser(command: commands.Command, sub: Any) -> None:
    discard = command.subcommand(
        sub,
        "discard",
        help="Mark pending entries discarded: kept for audit, never replayed.",
        description=describe(
            """Discard pending entries: they stay in the database with status
            `discarded` (for audit) until purged, and are never replayed. An entry
            being replayed at that moment is skipped. Asks before discarding more
            than one entry unless --noinput.""",
            "manage.py dlq discard 43",
            "manage.py dlq discard --plugin OldPlugin --until 30d --dry-run",
            "manage.py dlq discard --plugin OldPlugin --until 30d --noinput",
        ),
    )
    _selection(discard, verb="discard")


def _purge_parser(command: commands.Command, sub: Any) -> None:
    purge = command.subcommand(
        sub,
        "purge",
        help="Delete entries replayed or discarded long ago.",
        description=describe(
            """Delete for good the entries that were replayed or discarded more than
            AGE ago (--older-than, or else the dlq.retention key of config.toml).
            Pending entries are kept unless --include-pending, which deletes those
            created more than AGE ago too. Asks first unless --noinput.""",
            "manage.py dlq purge --older-than 30d --dry-run",
            "manage.py dlq purge --noinput                 # dlq.retention",
            "manage.py dlq purge --older-than 90d --include-pending --noinput",
        ),
    )
    purge.add_argument(
        "--older-than",
        type=commands.duration_arg,
        metavar="AGE",
        help="Resolved (replayed or discarded) more than AGE ago: 30m, 12h, 30d, 1w"
        " (default: dlq.retention).",
    )
    purge.add_argument(
        "--include-pending",
        action="store_true",
        help="Also delete pending entries created more than AGE ago (never replayed).",
    )
    purge.add_argument(
        "--dry-run", action="store_true", help="Say how many would go; delete nothing."
    )
    purge.add_argument("--noinput", action="store_true", help="Do not ask for confirmation.")
    _common(purge)


def _filters(p: argparse.ArgumentParser, *, status: bool) -> None:
    g = p.add_argument_group("filters (all given must match)")
    g.add_argument("--plugin", metavar="NAME", help="Only entries of this plugin (exact name).")
    if status:
        g.add_argument(
            "--status",
            choices=["pending", "replayed", "discarded", "all"],
            default="pending",
            help="Only entries in this state (default pending).",
        )
    commands.time_range_options(g, what="Created")
    g.add_argument(
        "--error",
        metavar="TEXT",
        help="Error class or message contains TEXT (case-insensitive).",
    )


def _selection(p: argparse.ArgumentParser, *, verb: str) -> None:
    p.add_argument(
        "ids",
        nargs="*",
        type=entry_id_arg,
        metavar="ID",
        help=f"Entries to {verb} (as `dlq list` shows them).",
    )
    _filters(p, status=False)
    p.add_argument(
        "--all",
        action="store_true",
        help=f"{verb.capitalize()} every pending entry (instead of IDs or filters).",
    )
    p.add_argument(
        "--limit",
        type=commands.count_arg,
        metavar="N",
        help=f"{verb.capitalize()} at most N entries (the oldest first).",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help=f"Say exactly what would be {verb}ed (entries, events, plugins); change nothing.",
    )
    p.add_argument(
        "--noinput",
        "--no-input",
        action="store_true",
        help="Do not ask for confirmation (for scripts).",
    )
    _common(p)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="Print JSON (for scripts) instead.")
    commands.verbosity_option(p, "0 summary only, 1 normal (default), 2 every entry.")
