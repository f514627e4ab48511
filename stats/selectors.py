"""Reads of the stats tables for the admin (the dashboard's top sources, the
sources list's columns, a source's page). ``GET /stats*`` reads through
:mod:`stats.store`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from stats.aggregator import from_micros
from stats.models import SourceEventType, SourceStats

__all__ = ["SourceFigures", "source_figures", "top_sources"]


@dataclass(frozen=True)
class SourceFigures:
    source_id: int
    total_events: int
    first_event: datetime
    last_event: datetime
    event_types: dict[str, int] = field(default_factory=dict)


def top_sources(*, limit: int = 10) -> list[SourceFigures]:
    """The sources with the most events (their types left out). A scan of the
    source table (no index on the total: every merge would pay for one); see
    bench/sources_admin.py for its cost at a million sources."""
    rows = SourceStats.objects.order_by("-total_events", "source_id")[:limit]
    return [
        SourceFigures(
            r.source_id, r.total_events, from_micros(r.first_event_us), from_micros(r.last_event_us)
        )
        for r in rows
    ]


def source_figures(*, ids: list[int]) -> dict[int, SourceFigures]:
    """The figures of the sources ``ids`` that have events, with their counts by
    type (most first): two indexed queries, whatever the table's size."""
    types: dict[int, dict[str, int]] = {}
    for sid, event_type, count in (
        SourceEventType.objects.filter(source_id__in=ids)
        .order_by("source_id", "-count", "event_type")
        .values_list("source_id", "event_type", "count")
    ):
        types.setdefault(sid, {})[event_type] = count
    return {
        r.source_id: SourceFigures(
            r.source_id,
            r.total_events,
            from_micros(r.first_event_us),
            from_micros(r.last_event_us),
            types.get(r.source_id, {}),
        )
        for r in SourceStats.objects.filter(source_id__in=ids)
    }
