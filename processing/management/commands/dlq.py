# Long: most of it is the help text, which is the command's manual.
"""``manage.py dlq``: the operator's tool for the dead-letter queue.

Thin on purpose: it parses, asks, prints; the work is done by
:mod:`processing.selectors`, :mod:`processing.replay` and
:mod:`processing.dead_letters` (which the admin's actions call too), and the
wording is :mod:`processing.wording`'s.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.utils import timezone
from tqdm import tqdm

from ops import cli
from ops.cli import SOME_FAILED, TIME_HELP, USAGE_ERROR, describe, plural
from ops.timespec import format_duration
from processing.dead_letters import dead_letters_discard, dead_letters_purge
from processing.models import DeadLetter
from processing.replay import ReplayResult, dead_letters_replay, replay_plan
from processing.selectors import (
    DeadLetterFilter,
    dead_letter_get,
    dead_letter_list,
    dead_letter_totals,
)
from processing.wording import (
    LIST_HEAD,
    LIST_RIGHT,
    discard_line,
    entries,
    letter_as_dict,
    letter_page,
    letter_row,
    list_line,
    purge_line,
    replay_plan_lines,
    replay_result_line,
    replay_summary_line,
)

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


class Command(cli.Command):
    help = MANUAL
    epilog = EXIT_CODES

    # --- arguments -----------------------------------------------------------

    def add_arguments(self, parser: CommandParser) -> None:
        sub = self.subcommands(parser, ("list", "show", "replay", "discard", "purge"))
        self._list_parser(sub)
        self._show_parser(sub)
        self._replay_parser(sub)
        self._discard_parser(sub)
        self._purge_parser(sub)

    def _list_parser(self, sub: Any) -> None:
        ls = self.subcommand(
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
        self._filters(ls, status=True)
        ls.add_argument(
            "--limit",
            type=cli.count_arg,
            default=50,
            metavar="N",
            help="Show at most N entries (default 50; 0 = all).",
        )
        self._common(ls)

    def _show_parser(self, sub: Any) -> None:
        show = self.subcommand(
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
        show.add_argument("id", type=_entry_id, metavar="ID", help="The entry's ID.")
        show.add_argument(
            "--events",
            type=cli.count_arg,
            default=10,
            metavar="N",
            help="Print the first N events (default 10; 0 = none). --json prints them all.",
        )
        self._common(show)

    def _replay_parser(self, sub: Any) -> None:
        replay = self.subcommand(
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
        self._selection(replay, verb="replay")

    def _discard_parser(self, sub: Any) -> None:
        discard = self.subcommand(
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
        self._selection(discard, verb="discard")

    def _purge_parser(self, sub: Any) -> None:
        purge = self.subcommand(
            sub,
            "purge",
            help="Delete entries replayed or discarded long ago.",
            description=describe(
                """Delete for good the entries that were replayed or discarded more than
                AGE ago. Pending entries are never purged. Asks first unless
                --noinput.""",
                "manage.py dlq purge --older-than 30d --dry-run",
                "manage.py dlq purge --older-than 30d --noinput",
            ),
        )
        purge.add_argument(
            "--older-than",
            type=cli.duration_arg,
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
            "--since",
            type=cli.instant_arg,
            metavar="WHEN",
            help=f"Created at or after WHEN: {TIME_HELP}.",
        )
        g.add_argument(
            "--until",
            type=cli.instant_arg,
            metavar="WHEN",
            help=f"Created before WHEN: {TIME_HELP}.",
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
            type=cli.count_arg,
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
        cli.verbosity_option(p, "0 summary only, 1 normal (default), 2 every entry.")

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
        filters = self._filter(opts, status=status)
        qs = dead_letter_list(filters=filters)
        letters = list(qs[: opts["limit"]] if opts["limit"] else qs)
        if opts["json"]:
            self.stdout.write(json.dumps([letter_as_dict(x) for x in letters], indent=2))
            return
        if letters:
            now = timezone.now()
            rows = [letter_row(x, now=now) for x in letters]
            self.stdout.write(cli.table([LIST_HEAD, *rows], right=LIST_RIGHT))
        total, events = dead_letter_totals(filters=filters)  # of the selection, not the page
        self.stdout.write(list_line(shown=len(letters), total=total, events=events, status=status))

    def _show(self, opts: dict[str, Any]) -> None:
        letter = dead_letter_get(letter_id=opts["id"])
        if letter is None:
            raise CommandError(
                f"no dead letter with ID {opts['id']} (see `manage.py dlq list --status all`)",
                returncode=USAGE_ERROR,
            )
        if opts["json"]:
            self.stdout.write(json.dumps(letter_as_dict(letter, events=None), indent=2))
        else:
            self.stdout.write(letter_page(letter, events=opts["events"]))

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

    def _replay(self, opts: dict[str, Any]) -> None:
        letters = self._selected(opts, verb="replay")
        plan = replay_plan(letters=letters)
        if opts["dry_run"]:
            self._replay_dry_run(plan, opts)
            return
        runnable = plan.runnable
        if len(runnable) > 1:
            events = sum(e.events for e in runnable)
            plugins = ", ".join(plan.by_plugin())
            cli.confirm(
                f"Replay {entries(len(runnable))} ({plural(events, 'event')}) with {plugins}?",
                noinput=opts["noinput"],
            )
        verbosity = opts["verbosity"]
        bar = tqdm(
            total=len(letters),
            unit="entry",
            desc="replaying",
            file=sys.stderr,
            disable=True if verbosity == 0 or len(letters) < 2 or opts["json"] else None,
        )

        def report(result: ReplayResult) -> None:
            bar.update(1)
            noteworthy = result.outcome == "failed" or result.needs_action
            if opts["json"] or not (verbosity >= 2 or (verbosity >= 1 and noteworthy)):
                return
            with tqdm.external_write_mode(file=sys.stderr):
                (self.stderr if noteworthy else self.stdout).write(replay_result_line(result))

        try:
            summary = dead_letters_replay(ids=[x.pk for x in letters], on_result=report)
        finally:
            bar.close()
        if opts["json"]:
            self.stdout.write(json.dumps(summary.as_dict(), indent=2))
        else:
            self.stdout.write(replay_summary_line(summary))
        if not summary.ok:
            raise CommandError(
                "some entries were not replayed (see above); they stay pending",
                returncode=SOME_FAILED,
            )

    def _replay_dry_run(self, plan: Any, opts: dict[str, Any]) -> None:
        if opts["json"]:
            self.stdout.write(json.dumps(plan.as_dict(), indent=2))
            return
        if opts["verbosity"] >= 2:
            for e in plan.runnable:
                self.stdout.write(
                    f"Would replay #{e.letter_id} {e.plugin} batch {e.batch_id}"
                    f" ({plural(e.events, 'event')})"
                )
        for line in replay_plan_lines(plan):
            self.stdout.write(line)
        self.stdout.write("Dry run: nothing was changed.")

    def _discard(self, opts: dict[str, Any]) -> None:
        letters = self._selected(opts, verb="discard")
        pending = [x for x in letters if x.status == DeadLetter.Status.PENDING]
        events = sum(x.event_count for x in pending)
        what = f"{entries(len(pending))} ({plural(events, 'event')})"
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
            cli.confirm(
                f"Discard {what}? They are kept for audit, never replayed.",
                noinput=opts["noinput"],
            )
        summary = dead_letters_discard(ids=[x.pk for x in letters])
        if opts["json"]:
            self.stdout.write(
                json.dumps({"discarded": summary.discarded, "skipped": summary.skipped})
            )
        else:
            self.stdout.write(discard_line(summary))

    def _purge(self, opts: dict[str, Any]) -> None:
        age = opts["older_than"]
        count = dead_letters_purge(older_than=age, dry_run=True)
        if opts["dry_run"]:
            if opts["json"]:
                self.stdout.write(json.dumps({"would_purge": count}))
            else:
                self.stdout.write(purge_line(count=count, older_than=age, dry_run=True))
            return
        if count:
            cli.confirm(
                f"Delete {entries(count)} replayed or discarded more than"
                f" {format_duration(age)} ago? This cannot be undone.",
                noinput=opts["noinput"],
            )
        deleted = dead_letters_purge(older_than=age) if count else 0
        if opts["json"]:
            self.stdout.write(json.dumps({"purged": deleted}))
        else:
            self.stdout.write(purge_line(count=deleted, older_than=age, dry_run=False))
