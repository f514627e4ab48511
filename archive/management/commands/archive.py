"""``manage.py archive export`` and ``manage.py archive purge``: the ArchiveProcessor's
events out as JSON Lines or CSV, and old ones deleted. Thin: the work is
:mod:`archive.selectors`, :mod:`archive.export` and :mod:`archive.services`."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any, TextIO

from django.core.management.base import CommandError, CommandParser
from django.utils import timezone
from tqdm import tqdm

from archive.export import export_write
from archive.selectors import ArchiveFilter, archived_events
from archive.services import PurgeRule, archive_purge, archive_purge_count, archive_purge_plan
from core import commands
from core.commands import USAGE_ERROR, describe, plural
from core.config import get_config
from core.timespans import format_duration
from plugins.base import U64_MAX
from sources.selectors import archive_retentions

MANUAL = """\
The raw-event archive that the ArchiveProcessor keeps (enable it in config.toml,
[processing.plugins.ArchiveProcessor], or in the admin): every accepted event with
its source, type, timestamp, data, the time it was received and its batch id.

  manage.py archive export --source 7 --since 2h > source-7.jsonl
  manage.py archive export --type purchase --since 2026-11-01 --until 2026-12-01 --format csv
  manage.py archive purge --older-than 30d --dry-run
  manage.py archive purge --noinput    # each source's retention, else archive.retention

Times (--since, --until, --older-than) are received times.
Run `manage.py archive SUBCOMMAND --help` for each subcommand's options.
"""


def _source_id(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a source id (a whole number)") from None
    if not 0 <= value <= U64_MAX:
        raise argparse.ArgumentTypeError(f"{text!r} is not a source id (0 to 2^64-1)")
    return value


class _Text:
    """The command's stdout as a plain text stream (no line endings added)."""

    def __init__(self, wrapper: Any) -> None:
        self._wrapper = wrapper

    def write(self, text: str) -> None:
        self._wrapper.write(text, ending="")

    def flush(self) -> None:
        self._wrapper.flush()


class Command(commands.Command):
    help = MANUAL
    epilog = "exit status: 0 done, 1 cancelled at the confirmation, 2 bad usage"

    def add_arguments(self, parser: CommandParser) -> None:
        sub = self.subcommands(parser, ("export", "purge"))
        self._export_parser(sub)
        self._purge_parser(sub)

    def _export_parser(self, sub: Any) -> None:
        about = "Stream archived events, oldest received first, as JSON Lines or CSV."
        export = self.subcommand(
            sub,
            "export",
            help=about,
            description=describe(
                about
                + """ Every filter given must match. JSON Lines: one object per line with
                sourceId, type, timestamp, data, receivedAt, batchId. CSV: a header line,
                then source_id, type, timestamp, received_at, batch_id and data (as JSON
                text). Memory stays flat whatever the size: rows are streamed.""",
                "manage.py archive export --source 7 --type purchase --since 2h",
                "manage.py archive export --since 1d --format csv --output day.csv",
            ),
        )
        g = export.add_argument_group("filters (all given must match)")
        g.add_argument("--source", type=_source_id, metavar="ID", help="Only this source id.")
        g.add_argument("--type", metavar="TYPE", help="Only events of this type (exact).")
        commands.time_range_options(g, what="Received")
        export.add_argument(
            "--format",
            choices=["jsonl", "csv"],
            default="jsonl",
            help="jsonl (default): one JSON object per line; csv: a header, then one row each.",
        )
        export.add_argument(
            "--output",
            metavar="FILE",
            help="Write to FILE instead of standard output (a progress bar shows on a terminal).",
        )
        commands.verbosity_option(export, "0 nothing on stderr, 1 the count at the end (default).")

    def _purge_parser(self, sub: Any) -> None:
        about = "Delete archived events received more than AGE ago."
        purge = self.subcommand(
            sub,
            "purge",
            help=about,
            description=describe(
                about
                + """ AGE is --older-than (every source alike), or else each source's own
                archive retention (the admin's Sources page) and, for the others, the
                archive.retention key of config.toml. Deletes in chunks of a few thousand
                rows, each its own transaction, so ingest and processing go on meanwhile.
                Asks first unless --noinput; a progress bar shows on a terminal.""",
                "manage.py archive purge --older-than 30d --dry-run",
                "manage.py archive purge --older-than 90d --noinput",
            ),
        )
        purge.add_argument(
            "--older-than",
            type=commands.duration_arg,
            metavar="AGE",
            help="Received more than AGE ago, every source alike: 12h, 30d, 1w (default: each"
            " source's archive retention, else archive.retention).",
        )
        purge.add_argument(
            "--dry-run", action="store_true", help="Say how many would go; delete nothing."
        )
        purge.add_argument("--noinput", action="store_true", help="Do not ask for confirmation.")
        commands.verbosity_option(purge, "0 quiet, 1 summary (default), 2 also the cut-off time.")

    def handle(self, *args: Any, **opts: Any) -> None:
        if opts["action"] == "export":
            self._export(opts)
        else:
            self._purge(opts)

    def _export(self, opts: dict[str, Any]) -> None:
        filters = ArchiveFilter(
            source_id=opts["source"], type=opts["type"], since=opts["since"], until=opts["until"]
        )
        if filters.since and filters.until and filters.until <= filters.since:
            raise CommandError("--until must be after --since", returncode=USAGE_ERROR)
        path = opts["output"]
        # Progress on stderr, on a terminal, unless the events go to that terminal too.
        quiet = opts["verbosity"] == 0 or (not path and sys.stdout.isatty())
        bar = tqdm(unit="event", desc="exporting", file=sys.stderr, disable=True if quiet else None)
        with contextlib.ExitStack() as stack:
            stack.callback(bar.close)
            out: TextIO = (
                stack.enter_context(Path(path).open("w", newline=""))
                if path
                else _Text(self.stdout)  # type: ignore[assignment]
            )
            rows = archived_events(filters=filters)
            try:
                count = export_write(rows, fmt=opts["format"], out=out, on_progress=bar.update)
            except BrokenPipeError:  # the reader went away (`| head`): not an error
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                return
        if opts["verbosity"] >= 1:
            where = f" to {path}" if path else ""
            self.stderr.write(f"exported {plural(count, 'event')}{where}")

    def _purge(self, opts: dict[str, Any]) -> None:
        age = opts["older_than"]
        if age is not None:
            rules = [PurgeRule(before=timezone.now() - age)]
            when = f"received more than {format_duration(age)} ago"
        else:
            default, overrides = get_config().archive.retention, archive_retentions()
            if default is None and not overrides:
                raise CommandError(
                    "say how old: --older-than AGE (e.g. 30d), or set archive.retention in"
                    " config.toml (or a source's archive retention in the admin)",
                    returncode=USAGE_ERROR,
                )
            rules = archive_purge_plan(default=default, overrides=overrides)
            when = _retention_text(default, overrides)
        count = archive_purge_count(rules=rules)
        what = f"{plural(count, 'archived event')} {when}"
        if opts["verbosity"] >= 2:
            for rule in rules:
                of = "every other source" if rule.source_id is None else f"source {rule.source_id}"
                self.stdout.write(f"cut-off of {of}: {rule.before.isoformat()}")
        if opts["dry_run"]:
            self.stdout.write(f"Would delete {what}. Dry run: nothing was changed.")
            return
        if count:
            commands.confirm(f"Delete {what}? This cannot be undone.", noinput=opts["noinput"])
        bar = tqdm(
            total=count,
            unit="event",
            desc="purging",
            file=sys.stderr,
            disable=True if opts["verbosity"] == 0 or not count else None,
        )
        try:
            deleted = archive_purge(rules=rules, on_progress=bar.update)
        finally:
            bar.close()
        if opts["verbosity"] >= 1:
            self.stdout.write(f"purged {plural(deleted, 'archived event')} ({when})")


def _retention_text(default: timedelta | None, overrides: dict[int, timedelta]) -> str:
    """``received more than 90 days ago`` and the sources with a retention of their own."""
    text = f"received more than {format_duration(default)} ago" if default else "kept"
    if not overrides:
        return text
    own = ", ".join(f"{sid}: {format_duration(age)}" for sid, age in sorted(overrides.items()))
    return f"{text} (sources with their own retention: {own})"
