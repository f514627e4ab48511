"""How the dead-letter queue reads to an operator, in the admin and in
``manage.py dlq`` alike: summary lines, the dry-run plan, an entry as a table
row, as a page of text, and as JSON."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from core.commands import plural
from core.timespans import format_age, format_duration
from processing.dead_letters import DiscardSummary
from processing.models import DeadLetter
from processing.replay import ReplayOutcome, ReplayPlan, ReplayResult, ReplaySummary
from processing.selectors import dead_letter_events

__all__ = [
    "LIST_HEAD",
    "LIST_RIGHT",
    "discard_line",
    "entries",
    "first_line",
    "letter_as_dict",
    "letter_page",
    "letter_row",
    "list_line",
    "purge_line",
    "replay_plan_lines",
    "replay_result_line",
    "replay_result_note",
    "replay_summary_line",
]

LIST_HEAD = ("ID", "AGE", "PLUGIN", "EVENTS", "ATTEMPTS", "SPLITS", "STATUS", "ERROR")
LIST_RIGHT = frozenset({0, 3, 4, 5})


def entries(count: int) -> str:
    """``1 entry``, ``3 entries``."""
    return plural(count, "entry", "entries")


def first_line(text: str, width: int = 70) -> str:
    line = (text.splitlines() or [""])[0]
    return line if len(line) <= width else line[: width - 1] + "…"


# --- replay, discard, purge -------------------------------------------------------


def replay_summary_line(summary: ReplaySummary) -> str:
    return (
        f"replayed {summary.count(ReplayOutcome.REPLAYED)},"
        f" failed {summary.count(ReplayOutcome.FAILED)},"
        f" skipped {summary.count(ReplayOutcome.SKIPPED)}"
    )


def replay_result_line(result: ReplayResult) -> str:
    """``#42 StorageProcessor batch ab12: failed: OperationalError: ...`` (the
    first line of the reason; the rest is in ``dlq show``)."""
    lines = result.reason.splitlines()
    reason = f": {lines[0]}" if lines else ""
    if len(lines) > 1:
        reason += f" (full error: `manage.py dlq show {result.letter_id}`)"
    return f"#{result.letter_id} {result.plugin} batch {result.batch_id}: {result.outcome}{reason}"


def replay_result_note(result: ReplayResult) -> str:
    """The admin's message for an entry that failed or needs action: ``#42 failed: ...``."""
    return f"#{result.letter_id} {result.outcome}: {result.reason}"


def replay_plan_lines(plan: ReplayPlan) -> list[str]:
    """``Would replay 2 entries (100 events) for StorageProcessor.``, then the skips."""
    runnable = plan.runnable
    events = sum(e.events for e in runnable)
    head = f"Would replay {entries(len(runnable))} ({plural(events, 'event')})"
    plugins = plan.by_plugin()
    if len(plugins) == 1:
        head += f" for {next(iter(plugins))}"
    elif plugins:
        head += ": " + "; ".join(
            f"{entries(n)} ({plural(ev, 'event')}) for {plugin}"
            for plugin, (n, ev) in plugins.items()
        )
    out = [head + "."]
    out += [f"Would skip #{e.letter_id} ({e.plugin}): {e.skip_reason}" for e in plan.skipped]
    return out


def discard_line(summary: DiscardSummary) -> str:
    return f"discarded {summary.discarded}, skipped {summary.skipped}"


def purge_line(
    *, count: int, older_than: timedelta, dry_run: bool, include_pending: bool = False
) -> str:
    ago = format_duration(older_than)
    what = f"replayed or discarded{' (or pending)' if include_pending else ''} more than {ago} ago"
    if dry_run:
        return f"Would purge {entries(count)} {what}. Dry run: nothing was changed."
    return f"purged {count} ({what})"


# --- one entry ---------------------------------------------------------------------


def letter_row(letter: DeadLetter, *, now: datetime) -> tuple[str, ...]:
    """An entry under :data:`LIST_HEAD`."""
    return (
        str(letter.pk),
        format_age(now - letter.created_at),
        letter.plugin,
        str(letter.event_count),
        str(letter.attempts),
        str(letter.splits),
        letter.status,
        first_line(letter.last_replay_error or letter.error_summary),
    )


def list_line(*, shown: int, total: int, events: int, status: str | None) -> str:
    """``60 pending entries, 300 events; showing 50 of 60 (--limit)`` under the
    table: the totals of everything selected, then how much of it is shown."""
    more = f"; showing {shown} of {total} (--limit)" if shown < total else ""
    which = "" if status is None else f"{status} "
    return f"{plural(total, which + 'entry', which + 'entries')}, {plural(events, 'event')}{more}"


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "never"


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines() or [""])


def letter_page(letter: DeadLetter, *, events: int) -> str:
    """Everything about an entry, and its first ``events`` events, as text."""
    age = format_age(timezone.now() - letter.created_at)
    splits = f"{letter.splits}" + (" (a part isolated by bisection)" if letter.splits else "")
    fields = [
        ("ID", str(letter.pk)),
        ("Status", letter.status),
        ("Created", f"{_when(letter.created_at)} ({age} ago)"),
        ("Plugin", letter.plugin),
        ("Batch id", letter.batch_id),
        ("Splits", splits),
        ("Events", str(letter.event_count)),
        ("Attempts", str(letter.attempts)),
        ("Error", letter.error_class),
        ("Replays", str(letter.replay_count)),
        ("Last replay", _when(letter.last_replayed_at)),
    ]
    if letter.resolved_at:
        fields.append(("Resolved", _when(letter.resolved_at)))
    width = max(len(k) for k, _ in fields) + 1
    out = [f"{key + ':':<{width}} {value}" for key, value in fields]
    out.append("\nError message:\n" + _indent(letter.error_message))
    if letter.last_replay_error:
        out.append("\nLast replay error:\n" + _indent(letter.last_replay_error))
    shown = dead_letter_events(letter, limit=events)
    if shown:
        total = len(letter.events)
        more = (
            f" (first {len(shown)} of {total}; --events N for more)" if total > len(shown) else ""
        )
        out.append(f"\nEvents{more}:")
        out.append(json.dumps(shown, indent=2, ensure_ascii=False))
    return "\n".join(out)


def letter_as_dict(letter: DeadLetter, *, events: int | None = 0) -> dict[str, Any]:
    """An entry as plain data; ``events`` of its events (None: all)."""

    def iso(moment: datetime | None) -> str | None:
        return moment.isoformat() if moment else None

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
        "last_replayed_at": iso(letter.last_replayed_at),
        "last_replay_error": letter.last_replay_error,
        "resolved_at": iso(letter.resolved_at),
    }
    if events != 0:
        data["event_list"] = dead_letter_events(letter, limit=events)
    return data
