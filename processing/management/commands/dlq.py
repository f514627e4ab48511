"""``manage.py dlq``: the operator's tool for the dead-letter queue.

Thin on purpose: it parses, asks, prints; the work is done by
:mod:`processing.selectors` and :mod:`processing.services` (which the admin's
actions call too).
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, NoReturn

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from tqdm import tqdm

from processing.models import DeadLetter
from processing.selectors import (
    DeadLetterFilter,
    dead_letter_events,
    dead_letter_get,
    dead_letter_list,
)
from processing.services import (
    ReplayResult,
    dead_letters_discard,
    dead_letters_purge,
    dead_letters_replay,
    replay_plan,
)
from processing.timespec import format_age, parse_duration, parse_instant

USAGE_ERROR = 2  # bad usage: wrong arguments, unknown IDs, nothing selected
SOME_FAILED = 1  # some entries failed, or were skipped for a reason to fix, or cancelled

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

Run `manage.py dlq SUBCOMMAND --help` for each subcommand's options.
"""

EXIT_CODES = """\
exit status:
  0  everything selected was done (or had already left the queue)
  1  some entries failed, or were skipped for a reason you must fix (a plugin
     missing or disabled), or you answered no to the confirmation
  2  bad usage: unknown option, malformed value, unknown ID, nothing selected
"""

TIME_HELP = "a duration ago (30m, 2h, 3d, 1w) or an ISO date/time (2026-11-20, 2026-11-20T10:00Z)"


def _usage_error(parser: argparse.ArgumentParser, message: str) -> NoReturn:
    """Parser errors: exit status 2 from the command line and from call_command."""
    if getattr(parser, "called_from_command_line", False):
        parser.print_usage(sys.stderr)
        parser.exit(USAGE_ERROR, f"{parser.prog}: error: {message}\n")
    raise CommandError(f"Error: {message}", returncode=USAGE_ERROR)


class _Parser(CommandParser):
    def error(self, message: str) -> NoReturn:
        _usage_error(self, message)


def _duration(text: str) -> timedelta:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _instant(text: str) -> datetime:
    try:
        return parse_instant(text, now=timezone.now())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 or more")
    return value


def _entry_id(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an entry ID (IDs are the numbers `dlq list` shows)"
        ) from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not an entry ID (IDs start at 1)")
    return value


def _first_line(text: str, width: int = 70) -> str:
    line = (text.splitlines() or [""])[0]
    return line if len(line) <= width else line[: width - 1] + "…"


def _letter_dict(letter: DeadLetter, *, events: int | None = 0) -> dict[str, Any]:
    """An entry as plain data; ``events`` of its events (None: all)."""
    data: dict[str, Any] = {
        "id": letter.pk,
        "created_at": letter.created_at.isoformat(),
        "plugin": letter.plugin,
        "batch_id": letter.batch_id,
        "events": letter.event_count,
        "attempts": letter.attempts,
        "splits": letter.splits,
        "status": letter.status,
        "error_class": letter.error_class,
        "error_message": letter.error_message,
        "replay_count": letter.replay_count,
        "last_replayed_at": letter.last_replayed_at.isoformat()
        if letter.last_replayed_at
        else None,
        "last_replay_error": letter.last_replay_error,
        "resolved_at": letter.resolved_at.isoformat() if letter.resolved_at else None,
    }
    if events != 0:
        data["event_list"] = dead_letter_events(letter, limit=events)
    return data


def _table(rows: list[tuple[str, ...]], right: set[int]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for r in rows:
        cells = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _describe(text: str, *examples: str) -> str:
    """A subcommand's description: paragraphs wrapped to 79 columns, then examples."""
    paragraphs = [textwrap.fill(" ".join(par.split()), 79) for par in text.split("\n\n")]
    if examples:
        paragraphs.append("examples:\n" + "\n".join(f"  {e}" for e in examples))
    return "\n\n".join(paragraphs)


def _n(count: int, one: str, many: str | None = None) -> str:
    return f"{count:,} {one if count == 1 else (many or one + 's')}"


class Command(BaseCommand):
    help = MANUAL

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        kwargs.setdefault("epilog", EXIT_CODES)
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.error = lambda message: _usage_error(parser, message)  # type: ignore[method-assign]
        return parser

    # --- arguments -----------------------------------------------------------

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(
            dest="action",
            required=True,
            metavar="{list,show,replay,discard,purge}",
            parser_class=_Parser,
            title="subcommands",
        )
        fmt = argparse.RawDescriptionHelpFormatter

        ls = sub.add_parser(
            "list",
            help="List entries as a table (pending ones, newest first, by default).",
            description=_describe(
                """List dead letters, newest first: ID, age, plugin, events, attempts,
                splits (how many times bisection halved the original batch to isolate
                them), status, and the first line of the error (the last replay's error
                when a replay failed). Pending entries only, unless --status says
                otherwise.""",
                "manage.py dlq list",
                "manage.py dlq list --plugin StorageProcessor --since 2h",
                "manage.py dlq list --status all --error timeout --json",
            ),
            formatter_class=fmt,
            epilog=EXIT_CODES,
        )
        self._filters(ls, status=True)
        ls.add_argument(
            "--limit",
            type=_positive,
            default=50,
            metavar="N",
            help="Show at most N entries (default 50; 0 = all).",
        )
        self._common(ls)

        show = sub.add_parser(
            "show",
            help="Everything about one entry, its events pretty-printed.",
            description=_describe(
                """Show one entry: status, batch id, plugin, splits, attempts, the full
                error message, its replay history and its events pretty-printed as
                JSON.""",
                "manage.py dlq show 42",
                "manage.py dlq show 42 --events 100",
                "manage.py dlq show 42 --json > entry-42.json",
            ),
            formatter_class=fmt,
            epilog=EXIT_CODES,
        )
        show.add_argument("id", type=_entry_id, metavar="ID", help="The entry's ID.")
        show.add_argument(
            "--events",
            type=_positive,
            default=10,
            metavar="N",
            help="Print the first N events (default 10; 0 = none). --json prints them all.",
        )
        self._common(show)

        replay = sub.add_parser(
            "replay",
            help="Run the failed plugin again on pending entries.",
            description=_describe(
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
            formatter_class=fmt,
            epilog=EXIT_CODES,
        )
        self._selection(replay, verb="replay")

        discard = sub.add_parser(
            "discard",
            help="Mark pending entries discarded: kept for audit, never replayed.",
            description=_describe(
                """Discard pending entries: they stay in the database with status
                `discarded` (for audit) until purged, and are never replayed. An entry
                being replayed at that moment is skipped. Asks before discarding more
                than one entry unless --noinput.""",
                "manage.py dlq discard 43",
                "manage.py dlq discard --plugin OldPlugin --until 30d --dry-run",
                "manage.py dlq discard --plugin OldPlugin --until 30d --noinput",
            ),
            formatter_class=fmt,
            epilog=EXIT_CODES,
        )
        self._selection(discard, verb="discard")

        purge = sub.add_parser(
            "purge",
            help="Delete entries replayed or discarded long ago.",
            description=_describe(
                """Delete for good the entries that were replayed or discarded more than
                AGE ago. Pending entries are never purged. Asks first unless
                --noinput.""",
                "manage.py dlq purge --older-than 30d --dry-run",
                "manage.py dlq purge --older-than 30d --noinput",
            ),
            formatter_class=fmt,
            epilog=EXIT_CODES,
        )
        purge.add_argument(
            "--older-than",
            type=_duration,
            required=True,
            metavar="AGE",
            help="Resolved (replayed or discarded) more than AGE ago: 30m, 12h, 30d, 1w.",
        )
        purge.add_argument(
            "--dry-run", action="store_true", help="Say how many would go; delete nothing."
        )
        purge.add_argument("--noinput", action="store_true", help="Do not ask for confirmation.")
        self._common(purge)

    def _filters(self, p: argparse.ArgumentParser, *, status: bool) -> None:
        g = p.add_argument_group("filters (all given must match)")
        g.add_argument("--plugin", metavar="NAME", help="Only entries of this plugin (exact name).")
        if status:
            g.add_argument(
                "--status",
                choices=["pending", "replayed", "discarded", "all"],
                default="pending",
                help="Only entries in this state (default pending).",
            )
        g.add_argument(
            "--since", type=_instant, metavar="WHEN", help=f"Created at or after WHEN: {TIME_HELP}."
        )
        g.add_argument(
            "--until", type=_instant, metavar="WHEN", help=f"Created before WHEN: {TIME_HELP}."
        )
        g.add_argument(
            "--error",
            metavar="TEXT",
            help="Error class or message contains TEXT (case-insensitive).",
        )

    def _selection(self, p: argparse.ArgumentParser, *, verb: str) -> None:
        p.add_argument(
            "ids",
            nargs="*",
            type=_entry_id,
            metavar="ID",
            help=f"Entries to {verb} (as `dlq list` shows them).",
        )
        self._filters(p, status=False)
        p.add_argument(
            "--all",
            action="store_true",
            help=f"{verb.capitalize()} every pending entry (instead of IDs or filters).",
        )
        p.add_argument(
            "--limit",
            type=_positive,
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
        self._common(p)

    def _common(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("--json", action="store_true", help="Print JSON (for scripts) instead.")
        # So `dlq replay ... -v 2` works as well as `dlq -v 2 replay ...`.
        p.add_argument(
            "-v",
            "--verbosity",
            type=int,
            choices=[0, 1, 2, 3],
            default=argparse.SUPPRESS,
            help="0 summary only, 1 normal (default), 2 every entry.",
        )

    # --- subcommands ----------------------------------------------------------

    def handle(self, *args: Any, **opts: Any) -> None:
        action: Callable[[dict[str, Any]], None] = getattr(self, f"_{opts['action']}")
        action(opts)

    def _filter(self, opts: dict[str, Any], *, status: str | None) -> DeadLetterFilter:
        return DeadLetterFilter(
            ids=tuple(opts.get("ids") or ()),
            plugin=opts["plugin"],
            status=status,
            since=opts["since"],
            until=opts["until"],
            error=opts["error"],
        )

    def _list(self, opts: dict[str, Any]) -> None:
        status = None if opts["status"] == "all" else opts["status"]
        qs = dead_letter_list(filters=self._filter(opts, status=status))
        total = qs.count()
        letters = list(qs[: opts["limit"]] if opts["limit"] else qs)
        if opts["json"]:
            self.stdout.write(json.dumps([_letter_dict(x) for x in letters], indent=2))
            return
        if letters:
            now = timezone.now()
            head = ("ID", "AGE", "PLUGIN", "EVENTS", "ATTEMPTS", "SPLITS", "STATUS", "ERROR")
            rows = [
                (
                    str(x.pk),
                    format_age(now - x.created_at),
                    x.plugin,
                    str(x.event_count),
                    str(x.attempts),
                    str(x.splits),
                    x.status,
                    _first_line(x.last_replay_error or x.error_summary),
                )
                for x in letters
            ]
            self.stdout.write(_table([head, *rows], right={0, 3, 4, 5}))
        events = sum(x.event_count for x in letters)
        shown = f"; showing {len(letters)} of {total} (--limit)" if len(letters) < total else ""
        which = "" if status is None else f"{status} "
        self.stdout.write(
            f"{_n(len(letters), which + 'entry', which + 'entries')}, {_n(events, 'event')}{shown}"
        )

    def _show(self, opts: dict[str, Any]) -> None:
        letter = dead_letter_get(letter_id=opts["id"])
        if letter is None:
            raise CommandError(
                f"no dead letter with ID {opts['id']} (see `manage.py dlq list --status all`)",
                returncode=USAGE_ERROR,
            )
        if opts["json"]:
            self.stdout.write(json.dumps(_letter_dict(letter, events=None), indent=2))
            return
        when = lambda t: t.strftime("%Y-%m-%d %H:%M:%S UTC") if t else "never"  # noqa: E731
        fields = [
            ("ID", str(letter.pk)),
            ("Status", letter.status),
            (
                "Created",
                f"{when(letter.created_at)} ({format_age(timezone.now() - letter.created_at)} ago)",
            ),
            ("Plugin", letter.plugin),
            ("Batch id", letter.batch_id),
            (
                "Splits",
                f"{letter.splits}" + (" (a part isolated by bisection)" if letter.splits else ""),
            ),
            ("Events", str(letter.event_count)),
            ("Attempts", str(letter.attempts)),
            ("Error", letter.error_class),
            ("Replays", str(letter.replay_count)),
            ("Last replay", when(letter.last_replayed_at)),
        ]
        if letter.resolved_at:
            fields.append(("Resolved", when(letter.resolved_at)))
        width = max(len(k) for k, _ in fields) + 1
        for key, value in fields:
            self.stdout.write(f"{key + ':':<{width}} {value}")
        self.stdout.write("\nError message:\n" + _indent(letter.error_message))
        if letter.last_replay_error:
            self.stdout.write("\nLast replay error:\n" + _indent(letter.last_replay_error))
        shown = dead_letter_events(letter, limit=opts["events"])
        if shown:
            more = len(letter.events) - len(shown)
            suffix = (
                f" (first {len(shown)} of {len(letter.events)}; --events N for more)"
                if more
                else ""
            )
            self.stdout.write(f"\nEvents{suffix}:")
            self.stdout.write(json.dumps(shown, indent=2, ensure_ascii=False))

    def _selected(self, opts: dict[str, Any], *, verb: str) -> list[DeadLetter]:
        """The entries a replay/discard is about, oldest first; usage errors exit 2."""
        ids: list[int] = opts["ids"]
        filters = self._filter(opts, status=None if ids else DeadLetter.Status.PENDING)
        if opts["all"] and (ids or filters.narrows()):
            raise CommandError(
                f"--all {verb}s every pending entry: give it alone, or give IDs/filters instead",
                returncode=USAGE_ERROR,
            )
        if not opts["all"] and not filters.narrows():
            raise CommandError(
                f"say which entries to {verb}: IDs (see `manage.py dlq list`), a filter"
                " (--plugin, --since, --until, --error) or --all",
                returncode=USAGE_ERROR,
            )
        letters = list(dead_letter_list(filters=filters, oldest_first=True))
        if ids:
            found = {x.pk for x in letters}
            missing = [i for i in dict.fromkeys(ids) if i not in found]
            unknown = [i for i in missing if not DeadLetter.objects.filter(pk=i).exists()]
            if unknown:
                raise CommandError(
                    f"no dead letter with ID {', '.join(map(str, unknown))}"
                    " (see `manage.py dlq list --status all`); nothing was changed",
                    returncode=USAGE_ERROR,
                )
        if opts["limit"]:
            letters = letters[: opts["limit"]]
        return letters

    def _confirm(self, question: str, opts: dict[str, Any]) -> None:
        if opts["noinput"]:
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

    def _replay(self, opts: dict[str, Any]) -> None:
        letters = self._selected(opts, verb="replay")
        plan = replay_plan(letters=letters)
        verbosity = opts["verbosity"]
        if opts["dry_run"]:
            if opts["json"]:
                self.stdout.write(json.dumps(plan.as_dict(), indent=2))
                return
            if verbosity >= 2:
                for e in plan.runnable:
                    self.stdout.write(
                        f"Would replay #{e.letter_id} {e.plugin} batch {e.batch_id}"
                        f" ({_n(e.events, 'event')})"
                    )
            for line in plan.lines():
                self.stdout.write(line)
            self.stdout.write("Dry run: nothing was changed.")
            return
        runnable = plan.runnable
        if len(runnable) > 1:
            events = sum(e.events for e in runnable)
            plugins = ", ".join(plan.by_plugin())
            self._confirm(
                f"Replay {_n(len(runnable), 'entry', 'entries')} ({_n(events, 'event')})"
                f" with {plugins}?",
                opts,
            )
        bar = tqdm(
            total=len(letters),
            unit="entry",
            desc="replaying",
            file=sys.stderr,
            disable=True if verbosity == 0 or len(letters) < 2 or opts["json"] else None,
        )

        def report(result: ReplayResult) -> None:
            bar.update(1)
            if opts["json"]:
                return
            noteworthy = result.outcome == "failed" or result.needs_action
            if verbosity >= 2 or (verbosity >= 1 and noteworthy):
                lines = result.reason.splitlines()
                reason = f": {lines[0]}" if lines else ""
                if len(lines) > 1:
                    reason += f" (full error: `manage.py dlq show {result.letter_id}`)"
                line = (
                    f"#{result.letter_id} {result.plugin} batch {result.batch_id}:"
                    f" {result.outcome}{reason}"
                )
                with tqdm.external_write_mode(file=sys.stderr):
                    (self.stderr if noteworthy else self.stdout).write(line)

        try:
            summary = dead_letters_replay(ids=[x.pk for x in letters], on_result=report)
        finally:
            bar.close()
        if opts["json"]:
            self.stdout.write(json.dumps(summary.as_dict(), indent=2))
        else:
            self.stdout.write(summary.line())
        if not summary.ok:
            raise CommandError(
                "some entries were not replayed (see above); they stay pending",
                returncode=SOME_FAILED,
            )

    def _discard(self, opts: dict[str, Any]) -> None:
        letters = self._selected(opts, verb="discard")
        pending = [x for x in letters if x.status == DeadLetter.Status.PENDING]
        events = sum(x.event_count for x in pending)
        what = f"{_n(len(pending), 'entry', 'entries')} ({_n(events, 'event')})"
        if opts["dry_run"]:
            if opts["json"]:
                self.stdout.write(json.dumps({"would_discard": [x.pk for x in pending]}))
                return
            if opts["verbosity"] >= 2:
                for x in pending:
                    self.stdout.write(f"Would discard #{x.pk} {x.plugin} batch {x.batch_id}")
            self.stdout.write(f"Would discard {what}. Dry run: nothing was changed.")
            return
        if len(pending) > 1:
            self._confirm(f"Discard {what}? They are kept for audit, never replayed.", opts)
        summary = dead_letters_discard(ids=[x.pk for x in letters])
        if opts["json"]:
            self.stdout.write(
                json.dumps({"discarded": summary.discarded, "skipped": summary.skipped})
            )
        else:
            self.stdout.write(summary.line())

    def _purge(self, opts: dict[str, Any]) -> None:
        age = opts["older_than"]
        ago = _human(age)
        count = dead_letters_purge(older_than=age, dry_run=True)
        if opts["dry_run"]:
            if opts["json"]:
                self.stdout.write(json.dumps({"would_purge": count}))
            else:
                self.stdout.write(
                    f"Would purge {_n(count, 'entry', 'entries')} replayed or discarded more"
                    f" than {ago} ago. Dry run: nothing was changed."
                )
            return
        if count:
            self._confirm(
                f"Delete {_n(count, 'entry', 'entries')} replayed or discarded more than {ago}"
                " ago? This cannot be undone.",
                opts,
            )
        deleted = dead_letters_purge(older_than=age) if count else 0
        if opts["json"]:
            self.stdout.write(json.dumps({"purged": deleted}))
        else:
            self.stdout.write(f"purged {deleted} (replayed or discarded more than {ago} ago)")


def _human(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("week", 604800), ("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            return _n(seconds // size, unit)
    return _n(seconds, "second")


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines() or [""])
