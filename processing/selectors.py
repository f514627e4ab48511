"""Reads of the dead-letter queue: the filters every front end (command, admin)
shares."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Count, Func, IntegerField, Q, QuerySet, Sum

from processing.models import DeadLetter

__all__ = [
    "DeadLetterFilter",
    "dead_letter_counts",
    "dead_letter_events",
    "dead_letter_get",
    "dead_letter_list",
    "dead_letter_totals",
    "dead_letters_pending_by_plugin",
]

_WIRE_ORDER = ("sourceId", "type", "timestamp", "data")


@dataclass(frozen=True)
class DeadLetterFilter:
    """Which entries: every given criterion must hold. ``status=None`` means any."""

    ids: tuple[int, ...] = ()
    plugin: str | None = None
    status: str | None = DeadLetter.Status.PENDING
    since: datetime | None = None
    until: datetime | None = None
    error: str | None = None

    def narrows(self) -> bool:
        """True when something beyond the status picks the entries."""
        return bool(self.ids) or any(
            v is not None for v in (self.plugin, self.since, self.until, self.error)
        )


def dead_letter_list(
    *, filters: DeadLetterFilter, oldest_first: bool = False
) -> QuerySet[DeadLetter]:
    """The matching entries, newest first (or oldest first, the replay order)."""
    qs = DeadLetter.objects.all()
    if filters.ids:
        qs = qs.filter(pk__in=filters.ids)
    if filters.plugin is not None:
        qs = qs.filter(plugin=filters.plugin)
    if filters.status is not None:
        qs = qs.filter(status=filters.status)
    if filters.since is not None:
        qs = qs.filter(created_at__gte=filters.since)
    if filters.until is not None:
        qs = qs.filter(created_at__lt=filters.until)
    if filters.error:
        qs = qs.filter(
            Q(error_message__icontains=filters.error)
            | Q(error_class__icontains=filters.error)
            | Q(last_replay_error__icontains=filters.error)
        )
    return qs.order_by("created_at", "id") if oldest_first else qs.order_by("-created_at", "-id")


class _JsonArrayLength(Func):
    """The length of a JSON array column, counted by the database."""

    function = "json_array_length"  # SQLite
    output_field = IntegerField()

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(compiler, connection, function="jsonb_array_length", **extra)


def dead_letter_totals(*, filters: DeadLetterFilter) -> tuple[int, int]:
    """(entries, events) of every matching entry, in one query (the events
    counted by the database, not loaded)."""
    totals = (
        dead_letter_list(filters=filters)
        .order_by()
        .aggregate(entries=Count("id"), events=Sum(_JsonArrayLength("events")))
    )
    return int(totals["entries"]), int(totals["events"] or 0)


def dead_letter_get(*, letter_id: int) -> DeadLetter | None:
    return DeadLetter.objects.filter(pk=letter_id).first()


def dead_letter_events(letter: DeadLetter, *, limit: int | None = None) -> list[dict[str, Any]]:
    """The entry's events (the first ``limit``), keys in the wire order
    (PostgreSQL's jsonb keeps them in an order of its own)."""
    events = letter.events if limit is None else letter.events[:limit]
    return [{**{k: e[k] for k in _WIRE_ORDER if k in e}, **e} for e in events]


def dead_letter_counts() -> dict[str, int]:
    """Entries per status, every status present (one GROUP BY on an indexed column)."""
    counts = dict.fromkeys(DeadLetter.Status.values, 0)
    for row in DeadLetter.objects.order_by().values("status").annotate(n=Count("id")):
        counts[row["status"]] = row["n"]
    return counts


def dead_letters_pending_by_plugin() -> dict[str, int]:
    """Pending entries per plugin, most first (one GROUP BY)."""
    rows = (
        DeadLetter.objects.filter(status=DeadLetter.Status.PENDING)
        .order_by()
        .values("plugin")
        .annotate(n=Count("id"))
    )
    pairs = sorted(((r["plugin"], r["n"]) for r in rows), key=lambda p: (-p[1], p[0]))
    return dict(pairs)
