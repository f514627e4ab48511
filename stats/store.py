# Long: the database store's statements and the merge that runs them belong together.
"""The stats stores.

* :class:`DatabaseStore` (default): merges a batch's aggregate into the
  database in one transaction together with the batch id, so a batch seen
  before is skipped (exactly-once effect under at-least-once delivery).
* :class:`MemoryStore`: process-local, for inline deployments only (README, "Deployment shapes").
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import chain
from typing import Any, Protocol

from django.db import connection, transaction
from django.utils import timezone

from core.config import get_config
from core.fields import BIAS
from core.process_wide import process_wide
from stats.aggregator import SourceAggregate, aggregate_wire, from_micros
from stats.minutes import minute_counts_add_many
from stats.models import ProcessedBatch, SourceEventType, SourceStats, StatsTotals
from stats.pg_merge import SourceRows as _SourceRows
from stats.pg_merge import TypeRows as _TypeRows
from stats.pg_merge import merge_all

__all__ = ["TOTALS_SHARDS", "DatabaseStore", "MemoryStore", "SourceView", "StatsStore", "get_store"]

# Rows of StatsTotals (made by migrations 0002/0003): merges add to any of them,
# GET /stats sums them.
TOTALS_SHARDS = 64
_LEDGER_CHUNK = 300  # ledger rows per INSERT (3 parameters each)


# The aggregate of the batches whose ids are given (all of a merge's, or those
# not merged before).
_Fold = Callable[[set[str]], dict[int, SourceAggregate]]


def _rows(aggregates: dict[int, SourceAggregate]) -> tuple[_SourceRows, _TypeRows]:
    """The upserts' rows, in the order every merge takes its row locks (ids
    biased as U64Field stores them, written out: this runs per source)."""
    ordered = sorted(aggregates.items())
    source_rows = [(sid - BIAS, a.total, a.first_us, a.last_us) for sid, a in ordered]
    type_rows = [
        (sid - BIAS, event_type, n)
        for sid, a in ordered
        for event_type, n in sorted(a.types.items())
    ]
    return source_rows, type_rows


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

    def merge_many(self, batches: list[tuple[str, Sequence[Mapping[str, Any]]]]) -> set[str]:
        """Merge several batches, ``(batch_id, wire events)``, all or none (in one
        transaction), each once per batch id; the ids merged now (not before)."""

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

    def merge_many(self, batches: list[tuple[str, Sequence[Mapping[str, Any]]]]) -> set[str]:
        return {
            batch_id
            for batch_id, events in dict(batches).items()
            if self.merge(batch_id=batch_id, aggregates=aggregate_wire(events))
        }

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
    building cost more than the database work (bench/RESULTS.md).

    A merge is five statements in one transaction, whatever the batch's size:
    the ledger row, one upsert of the batch's sources, one of their event types,
    one totals row, and one upsert of the events per minute (:mod:`stats.minutes`).
    Nothing in it waits for a merge of other sources:

    * sources and types are upserted in sorted order (every merge takes its row
      locks in the same order: no deadlock), and a merge waits only for a merge
      holding one of the same rows;
    * a source is new when its total after the upsert is this batch's own count
      (every stored source has counted at least one event), which stays exact
      when two merges create the same source at once: the second one's insert
      waits for the first to commit, then updates the row;
    * the totals are :data:`TOTALS_SHARDS` rows summed on read (``GET /stats``
      reads 64 rows, whatever the number of sources); on PostgreSQL a merge adds
      to the first shard no other transaction holds (``FOR UPDATE SKIP LOCKED``),
      as its last statement.

    On PostgreSQL the five are ONE statement (:mod:`stats.pg_merge`: data-modifying
    ``WITH`` queries, every row passed as arrays through ``unnest``): the ledger
    rows first, and the rest only when every batch was new (the usual case); when
    some batch was merged before, the same transaction merges the others with the
    statements below, one by one. On SQLite the upserts pass their rows as one multi-row
    ``VALUES`` (SQLite runs one writer at a time, and holds its lock for these
    statements only: the rows are built before the transaction starts).
    """

    def __init__(self) -> None:
        self._statements: dict[str, str] | None = None
        self._values: dict[tuple[str, int], str] = {}

    def _sql(self) -> dict[str, str]:
        if self._statements is None:
            self._statements = self._build_sql()
        return self._statements

    def _build_sql(self) -> dict[str, str]:
        q = connection.ops.quote_name
        pg = connection.vendor == "postgresql"
        least, greatest = ("LEAST", "GREATEST") if pg else ("min", "max")
        src = q(SourceStats._meta.db_table)
        typ = q(SourceEventType._meta.db_table)
        tot = q(StatsTotals._meta.db_table)
        if pg:
            source_rows = (
                "SELECT * FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[], %s::bigint[])"
            )
            type_rows = "SELECT * FROM unnest(%s::bigint[], %s::text[], %s::bigint[])"
        else:
            source_rows = type_rows = "VALUES {}"  # the rows' placeholders, per size
        return {
            "ledger": f"INSERT INTO {q(ProcessedBatch._meta.db_table)}"
            " (batch_id, events, processed_at) VALUES (%s, %s, %s)"
            " ON CONFLICT (batch_id) DO NOTHING",
            "ledger_many": f"INSERT INTO {q(ProcessedBatch._meta.db_table)}"
            " (batch_id, events, processed_at) VALUES {} ON CONFLICT (batch_id) DO NOTHING"
            " RETURNING batch_id",
            "upsert_sources": f"INSERT INTO {src}"
            f" (source_id, total_events, first_event_us, last_event_us) {source_rows}"
            " ON CONFLICT (source_id) DO UPDATE SET"
            f" total_events = {src}.total_events + excluded.total_events,"
            f" first_event_us = {least}({src}.first_event_us, excluded.first_event_us),"
            f" last_event_us = {greatest}({src}.last_event_us, excluded.last_event_us)"
            " RETURNING source_id, total_events",
            "upsert_types": f"INSERT INTO {typ} (source_id, event_type, count) {type_rows}"
            " ON CONFLICT (source_id, event_type) DO UPDATE SET"
            f" count = {typ}.count + excluded.count",
            # PostgreSQL: the first shard no other merge holds, never waiting.
            "add_free_shard": f"UPDATE {tot} SET sources_count = sources_count + %s,"
            f" events_count = events_count + %s WHERE id = (SELECT id FROM {tot}"
            " ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING id",
            # SQLite, or every shard busy, or none there (`manage.py flush`).
            "add_shard": f"INSERT INTO {tot} (id, sources_count, events_count)"
            " VALUES (%s, %s, %s) ON CONFLICT (id) DO UPDATE SET"
            f" sources_count = {tot}.sources_count + excluded.sources_count,"
            f" events_count = {tot}.events_count + excluded.events_count",
            "totals": "SELECT COALESCE(SUM(sources_count), 0), COALESCE(SUM(events_count), 0)"
            f" FROM {tot}",
        }

    def _upsert(self, cur: Any, name: str, rows: list[tuple[Any, ...]]) -> list[Any]:
        """One upsert statement of ``rows`` (columns as arrays on PostgreSQL; on
        SQLite as many rows per statement as its parameter limit allows)."""
        sql = self._sql()[name]
        returning = name == "upsert_sources"
        if connection.vendor == "postgresql":
            cur.execute(sql, [list(column) for column in zip(*rows, strict=True)])
            return list(cur.fetchall()) if returning else []
        width = len(rows[0])
        per_statement = max(1, (connection.features.max_query_params or 999) // width)
        out: list[Any] = []
        # sqlite3's own cursor, in Django's transaction: Django's wrapper rewrites
        # every %s of a statement into ? on each call, which here (hundreds of
        # parameters) cost more than the statement.
        raw = connection.connection.cursor()
        for start in range(0, len(rows), per_statement):
            chunk = rows[start : start + per_statement]
            key = (name, len(chunk))
            if key not in self._values:
                one = "(" + ", ".join(["?"] * width) + ")"
                self._values[key] = sql.format(", ".join([one] * len(chunk)))
            raw.execute(self._values[key], [v for row in chunk for v in row])
            if returning:
                out.extend(raw.fetchall())
        return out

    def _add_totals(self, cur: Any, *, sources: int, events: int) -> int:
        """Add to a totals shard; the shard's id (this transaction holds its row)."""
        sql = self._sql()
        if connection.vendor == "postgresql":
            cur.execute(sql["add_free_shard"], [sources, events])
            if row := cur.fetchone():
                return int(row[0])
        shard = random.randint(1, TOTALS_SHARDS) if connection.vendor == "postgresql" else 1
        cur.execute(sql["add_shard"], [shard, sources, events])
        return shard

    def merge(self, *, batch_id: str, aggregates: dict[int, SourceAggregate]) -> bool:
        counts = {batch_id: sum(a.total for a in aggregates.values())}
        return bool(self._merge(counts, lambda ids: aggregates))

    def merge_many(self, batches: list[tuple[str, Sequence[Mapping[str, Any]]]]) -> set[str]:
        """One transaction for all: the ledger rows (``RETURNING`` the ids not
        seen before), then the batches' events folded together into the same
        statements as one batch's, so each row (and on SQLite each page) is
        written once, not once per batch."""
        wire = dict(batches)  # a batch twice in ``batches`` counts once

        def fold(ids: set[str]) -> dict[int, SourceAggregate]:
            return aggregate_wire(chain.from_iterable(w for b, w in wire.items() if b in ids))

        return self._merge({b: len(w) for b, w in wire.items()}, fold)

    def _merge(self, counts: dict[str, int], fold: _Fold) -> set[str]:
        # Built before the transaction (SQLite's write lock is held from its start),
        # for the usual case of batches none of which was merged before.
        rows = _rows(fold(set(counts)))
        with transaction.atomic(), connection.cursor() as cur:
            if connection.vendor == "postgresql" and any(counts.values()):
                merged = merge_all(cur, counts, *rows, spare_shard=random.randint(1, TOTALS_SHARDS))
                if len(merged) == len(counts):
                    return merged  # the usual case: all of it done in one statement
                # Some batch merged before: the ledger rows of the others are in,
                # nothing else; they are merged below, statement by statement.
            else:
                merged = self._ledger(cur, counts)
            if not merged:
                return merged  # merged before: a redelivery or a replay
            if len(merged) < len(counts):
                rows = _rows(fold(merged))
            events = sum(counts[b] for b in merged)
            if not events:
                return merged  # nothing to count (a batch whose events all failed before)
            new_sources = self._upsert_rows(cur, *rows)
            shard = self._add_totals(cur, sources=new_sources, events=events)
            # The dashboard's; in the totals shard's row of the minute (held by no other).
            minute_counts_add_many(
                cur, batches=[(b, counts[b]) for b in sorted(merged)], shard=shard
            )
        return merged

    def _ledger(self, cur: Any, counts: dict[str, int]) -> set[str]:
        """Insert the batches' ledger rows; the ids that were not there."""
        now = timezone.now()
        if len(counts) == 1:
            ((batch_id, events),) = counts.items()
            cur.execute(self._sql()["ledger"], [batch_id, events, now])
            return {batch_id} if cur.rowcount else set()
        out: set[str] = set()
        ids = sorted(counts)
        for start in range(0, len(ids), _LEDGER_CHUNK):
            chunk = ids[start : start + _LEDGER_CHUNK]
            cur.execute(
                self._sql()["ledger_many"].format(", ".join(["(%s, %s, %s)"] * len(chunk))),
                [v for b in chunk for v in (b, counts[b], now)],
            )
            out.update(str(row[0]) for row in cur.fetchall())
        return out

    def _upsert_rows(self, cur: Any, source_rows: _SourceRows, type_rows: _TypeRows) -> int:
        """Upsert the sources' and their types' rows; the number of new sources."""
        own_totals = {row[0]: row[1] for row in source_rows}
        stored = self._upsert(cur, "upsert_sources", source_rows)
        self._upsert(cur, "upsert_types", type_rows)
        # New: its total is this merge's count (a stored source has at least 1).
        return sum(1 for sid, total in stored if total == own_totals[sid])

    def totals(self) -> tuple[int, int]:
        with connection.cursor() as cur:
            cur.execute(self._sql()["totals"])
            sources, events = cur.fetchone()
        return int(sources), int(events)

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
