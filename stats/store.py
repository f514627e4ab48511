"""The stats stores.

* :class:`DatabaseStore` (default): merges a batch's aggregate into the
  database in one transaction together with the batch id, so a batch seen
  before is skipped (exactly-once effect under at-least-once delivery).
* :class:`MemoryStore`: process-local, for inline deployments only (DESIGN §7).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from django.db import connection, transaction
from django.utils import timezone

from stats.aggregator import SourceAggregate, from_micros
from stats.fields import u64_to_db
from stats.models import ProcessedBatch, SourceEventType, SourceStats, StatsTotals
from telemetron_site.config import get_config
from telemetron_site.process_wide import process_wide

__all__ = ["DatabaseStore", "MemoryStore", "SourceView", "StatsStore", "get_store"]

# Source ids per "which exist already" query: under SQLite's 999 host parameters.
_IN_CHUNK = 500


@dataclass(frozen=True)
class SourceView:
    source_id: int
    total_events: int
    first_event: datetime
    last_event: datetime
    event_types: dict[str, int]


class StatsStore(Protocol):
    def merge(self, *, batch_id: str, aggregates: dict[int, SourceAggregate]) -> bool:
        """Merge once per batch id; False when the batch was merged before."""

    def totals(self) -> tuple[int, int]:
        """(sources_count, events_count)."""

    def source(self, source_id: int) -> SourceView | None: ...


class MemoryStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sources: dict[int, SourceAggregate] = {}
        self._seen: set[str] = set()
        self._events = 0

    def merge(self, *, batch_id: str, aggregates: dict[int, SourceAggregate]) -> bool:
        with self._lock:
            if batch_id in self._seen:
                return False
            self._seen.add(batch_id)
            for source_id, agg in aggregates.items():
                self._sources.setdefault(source_id, SourceAggregate()).merge(agg)
                self._events += agg.total
            return True

    def totals(self) -> tuple[int, int]:
        return len(self._sources), self._events

    def source(self, source_id: int) -> SourceView | None:
        with self._lock:
            agg = self._sources.get(source_id)
            if agg is None:
                return None
            return SourceView(
                source_id,
                agg.total,
                from_micros(agg.first_us),
                from_micros(agg.last_us),
                dict(agg.types),
            )


class DatabaseStore:
    """Every statement of a merge is raw SQL: in the workers the ORM's query
    building cost more than the database work (bench/RESULTS.md)."""

    def __init__(self) -> None:
        self._statements: dict[str, str] | None = None

    def _sql(self) -> dict[str, str]:
        if self._statements is None:
            self._statements = self._build_sql()
        return self._statements

    def _build_sql(self) -> dict[str, str]:
        q = connection.ops.quote_name
        least, greatest = ("min", "max") if connection.vendor == "sqlite" else ("LEAST", "GREATEST")
        src = q(SourceStats._meta.db_table)
        typ = q(SourceEventType._meta.db_table)
        tot = q(StatsTotals._meta.db_table)
        return {
            "ledger": f"INSERT INTO {q(ProcessedBatch._meta.db_table)}"
            " (batch_id, events, processed_at) VALUES (%s, %s, %s)"
            " ON CONFLICT (batch_id) DO NOTHING",
            # Also the lock every merge queues on (PostgreSQL's row lock; SQLite's
            # IMMEDIATE transaction holds the write lock already), taken before the
            # "which sources are new" read so that read is consistent.
            "add_events": f"UPDATE {tot} SET events_count = events_count + %s WHERE id = 1",
            "add_sources": f"UPDATE {tot} SET sources_count = sources_count + %s WHERE id = 1",
            # The migration writes the row; `manage.py flush` empties it away.
            "totals_row": f"INSERT INTO {tot} (id, sources_count, events_count) VALUES (1, 0, %s)",
            "existing": f"SELECT source_id FROM {src} WHERE source_id IN ({{}})",
            "upsert_sources": f"INSERT INTO {src}"
            " (source_id, total_events, first_event_us, last_event_us)"
            " VALUES (%s, %s, %s, %s) ON CONFLICT (source_id) DO UPDATE SET"
            f" total_events = {src}.total_events + excluded.total_events,"
            f" first_event_us = {least}({src}.first_event_us, excluded.first_event_us),"
            f" last_event_us = {greatest}({src}.last_event_us, excluded.last_event_us)",
            "upsert_types": f"INSERT INTO {typ} (source_id, event_type, count) VALUES (%s, %s, %s)"
            " ON CONFLICT (source_id, event_type) DO UPDATE SET"
            f" count = {typ}.count + excluded.count",
        }

    def merge(self, *, batch_id: str, aggregates: dict[int, SourceAggregate]) -> bool:
        events = sum(a.total for a in aggregates.values())
        sql = self._sql()
        db_ids = [u64_to_db(sid) for sid in sorted(aggregates)]
        source_rows = [
            (u64_to_db(sid), a.total, a.first_us, a.last_us)
            for sid, a in sorted(aggregates.items())
        ]
        type_rows = [
            (u64_to_db(sid), event_type, n)
            for sid, a in sorted(aggregates.items())
            for event_type, n in sorted(a.types.items())
        ]
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute(sql["ledger"], [batch_id, events, timezone.now()])
            if cur.rowcount == 0:
                return False  # merged before: a redelivery or a replay
            cur.execute(sql["add_events"], [events])
            if cur.rowcount == 0:
                cur.execute(sql["totals_row"], [events])
            existing = 0
            for start in range(0, len(db_ids), _IN_CHUNK):
                chunk = db_ids[start : start + _IN_CHUNK]
                cur.execute(sql["existing"].format(", ".join(["%s"] * len(chunk))), chunk)
                existing += len(cur.fetchall())
            cur.executemany(sql["upsert_sources"], source_rows)
            cur.executemany(sql["upsert_types"], type_rows)
            if new_sources := len(db_ids) - existing:
                cur.execute(sql["add_sources"], [new_sources])
        return True

    def totals(self) -> tuple[int, int]:
        row = StatsTotals.objects.filter(pk=1).values_list("sources_count", "events_count").first()
        return row if row is not None else (0, 0)

    def source(self, source_id: int) -> SourceView | None:
        row = SourceStats.objects.filter(source_id=source_id).first()
        if row is None:
            return None
        types = dict(
            SourceEventType.objects.filter(source_id=source_id)
            .order_by("event_type")
            .values_list("event_type", "count")
        )
        return SourceView(
            source_id,
            row.total_events,
            from_micros(row.first_event_us),
            from_micros(row.last_event_us),
            types,
        )


@process_wide
def get_store() -> StatsStore:
    """The process's store, as ``stats.store`` says."""
    return MemoryStore() if get_config().stats.store == "memory" else DatabaseStore()
