"""``manage.py dlq``: the operator's tool for the dead-letter queue.

Thin on purpose: it parses (its manual and options: :mod:`processing.dlq_options`),
asks, prints; the work is done by :mod:`processing.selectors`,
:mod:`processing.replay` and :mod:`processing.dead_letters` (which the admin's
actions call too), and the wording is :mod:`processing.dead_letter_text`'s.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.utils import timezone
from tqdm import tqdm

from core import commands
from core.commands import SOME_FAILED, USAGE_ERROR, plural
from core.config import get_config
from core.timespans import format_duration
from processing.dead_letter_text import (
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
from processing.dead_letters import dead_letters_discard, dead_letters_purge
from processing.dlq_options import EXIT_CODES, MANUAL, dlq_arguments_add
from processing.models import DeadLetter
from processing.replay import ReplayResult, dead_letters_replay, replay_plan
from processing.selectors import (
    DeadLetterFilter,
    dead_letter_get,
    dead_letter_list,
    dead_letter_totals,
)


class Command(commands.Command):
    help = MANUAL
    epilog = EXIT_CODES

    def add_arguments(self, parser: CommandParser) -> None:
        dlq_arguments_add(self, parser)

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
            self.stdout.write(commands.table([LIST_HEAD, *rows], right=LIST_RIGHT))
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
            commands.confirm(
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
            commands.confirm(
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
        age = opts["older_than"] or get_config().dlq.retention
        if age is None:
            raise CommandError(
                "say how old: --older-than AGE (e.g. 30d), or set dlq.retention in config.toml",
                returncode=USAGE_ERROR,
            )
        pending = opts["include_pending"]
        count = dead_letters_purge(older_than=age, dry_run=True, include_pending=pending)
        line = functools.partial(purge_line, older_than=age, include_pending=pending)
        if opts["dry_run"]:
            if opts["json"]:
                self.stdout.write(json.dumps({"would_purge": count}))
            else:
                self.stdout.write(line(count=count, dry_run=True))
            return
        if count:
            also = " (pending ones created then included)" if pending else ""
            commands.confirm(
                f"Delete {entries(count)} replayed or discarded more than"
                f" {format_duration(age)} ago{also}? This cannot be undone.",
                noinput=opts["noinput"],
            )
        deleted = dead_letters_purge(older_than=age, include_pending=pending) if count else 0
        if opts["json"]:
            self.stdout.write(json.dumps({"purged": deleted}))
        else:
            self.stdout.write(line(count=deleted, dry_run=False))
