"""Reads of the archive: the events an export streams, in time order."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import QuerySet, TextField
from django.db.models.functions import Cast

from archive.models import ArchivedEvent

__all__ = [
    "EXPORT_FIELDS",
    "ArchiveFilter",
    "archived_events",
    "archived_events_query",
]

# What an export holds per event, in this order; ``data_json`` is ``data`` as the
# database's JSON text (None for no data), copied into the export as it is: decoding
# and encoding it again was most of an export's CPU.
EXPORT_FIELDS = ("source_id", "type", "timestamp", "data_json", "received_at", "batch_id")


@dataclass(frozen=True)
class ArchiveFilter:
    """Every field given must match; ``since`` / ``until`` bound the received time
    (``since`` included, ``until`` excluded)."""

    source_id: int | None = None
    type: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def _selected(filters: ArchiveFilter) -> QuerySet[ArchivedEvent]:
    qs = ArchivedEvent.objects.all()
    if filters.source_id is not None:
        qs = qs.filter(source_id=filters.source_id)
    if filters.type is not None:
        qs = qs.filter(type=filters.type)
    if filters.since is not None:
        qs = qs.filter(received_at__gte=filters.since)
    if filters.until is not None:
        qs = qs.filter(received_at__lt=filters.until)
    return qs


def archived_events_query(*, filters: ArchiveFilter) -> QuerySet[ArchivedEvent, tuple[Any, ...]]:
    """The export's query: ``EXPORT_FIELDS`` of the matching events, oldest received first."""
    return (
        _selected(filters)
        .annotate(data_json=Cast("data", output_field=TextField()))
        .order_by("received_at", "id")
        .values_list(*EXPORT_FIELDS)
    )


def archived_events(*, filters: ArchiveFilter, chunk: int = 2000) -> Iterator[tuple[Any, ...]]:
    """The matching events as tuples of ``EXPORT_FIELDS``, oldest received first,
    streamed (a server-side cursor on PostgreSQL): memory stays flat however many."""
    return archived_events_query(filters=filters).iterator(chunk_size=chunk)
