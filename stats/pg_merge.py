"""The stats merge on PostgreSQL in ONE statement (:func:`merge_all`): the batches'
ledger rows, their sources, the sources' event types, a totals shard and the
minute counters, as data-modifying ``WITH`` queries over arrays (``unnest``).

``ledger`` inserts the batches' rows; ``go`` is true when all of them were new
(the usual case), and only then do the others write: the sources (``RETURNING``
their totals: a source is new when its total is this merge's count), their types
(after the sources, read through ``new``: every merge takes its row locks in one
order, sources then types, each sorted), the first totals shard no other
transaction holds (``FOR UPDATE SKIP LOCKED``; all busy, a random one: ``spare``)
and the minute counters in that shard's rows (:mod:`stats.minutes`). When some
batch was merged before, only the others' ledger rows were written; the caller
(:meth:`stats.store.DatabaseStore._merge`) merges them in the same transaction,
statement by statement.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connection
from django.utils import timezone

from stats.minutes import SHARDS, minute_rows, upsert_set
from stats.models import MinuteCounts, ProcessedBatch, SourceEventType, SourceStats, StatsTotals

__all__ = ["SourceRows", "TypeRows", "merge_all"]

# The upserts' rows: (biased source id, total, first µs, last µs) and
# (biased source id, event type, count), sorted.
SourceRows = list[tuple[int, int, int, int]]
TypeRows = list[tuple[int, str, int]]

_sql: str | None = None


def _statement() -> str:
    q = connection.ops.quote_name
    src = q(SourceStats._meta.db_table)
    typ = q(SourceEventType._meta.db_table)
    tot = q(StatsTotals._meta.db_table)
    mc = q(MinuteCounts._meta.db_table)
    return (
        f"WITH ledger AS (INSERT INTO {q(ProcessedBatch._meta.db_table)}"
        " (batch_id, events, processed_at)"
        " SELECT b.batch_id, b.events, %s FROM unnest(%s::text[], %s::int[])"
        " AS b(batch_id, events) ON CONFLICT (batch_id) DO NOTHING RETURNING batch_id),"
        " go AS (SELECT count(*) = %s AS ok FROM ledger),"
        " src_in AS (SELECT * FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[],"
        " %s::bigint[]) AS s(source_id, total_events, first_event_us, last_event_us)),"
        f" src AS (INSERT INTO {src} (source_id, total_events, first_event_us,"
        " last_event_us) SELECT * FROM src_in WHERE (SELECT ok FROM go)"
        " ON CONFLICT (source_id) DO UPDATE SET"
        f" total_events = {src}.total_events + excluded.total_events,"
        f" first_event_us = LEAST({src}.first_event_us, excluded.first_event_us),"
        f" last_event_us = GREATEST({src}.last_event_us, excluded.last_event_us)"
        " RETURNING source_id, total_events),"
        " new AS (SELECT count(*) AS n FROM src JOIN src_in USING (source_id)"
        " WHERE src.total_events = src_in.total_events),"
        f" typ AS (INSERT INTO {typ} (source_id, event_type, count)"
        " SELECT t.* FROM unnest(%s::bigint[], %s::text[], %s::bigint[])"
        " AS t(source_id, event_type, count), new WHERE (SELECT ok FROM go)"
        f" ON CONFLICT (source_id, event_type) DO UPDATE SET count = {typ}.count"
        " + excluded.count),"
        f" shard AS (UPDATE {tot} SET sources_count = sources_count + (SELECT n FROM new),"
        " events_count = events_count + %s WHERE (SELECT ok FROM go) AND id ="
        f" (SELECT id FROM {tot} ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)"
        " RETURNING id),"
        f" spare AS (INSERT INTO {tot} (id, sources_count, events_count)"
        " SELECT %s, n, %s FROM new WHERE (SELECT ok FROM go)"
        " AND NOT EXISTS (SELECT 1 FROM shard) ON CONFLICT (id) DO UPDATE SET"
        f" sources_count = {tot}.sources_count + excluded.sources_count,"
        f" events_count = {tot}.events_count + excluded.events_count RETURNING id),"
        f" minutes AS (INSERT INTO {mc} (id, minute, accepted, processed, lag_ms_sum,"
        f" lag_ms_max) SELECT m.slot * {SHARDS} + mod(h.id, {SHARDS}), m.minute,"
        " m.accepted, m.processed, m.lag_ms_sum, m.lag_ms_max"
        " FROM unnest(%s::int[], %s::bigint[], %s::bigint[], %s::bigint[], %s::bigint[],"
        " %s::bigint[]) AS m(slot, minute, accepted, processed, lag_ms_sum, lag_ms_max),"
        " (SELECT id FROM shard UNION ALL SELECT id FROM spare) h"
        f" ON CONFLICT (id) DO UPDATE SET {upsert_set()})"
        " SELECT batch_id FROM ledger"
    )


def _columns(rows: Sequence[Sequence[Any]], width: int) -> list[list[Any]]:
    return [list(c) for c in zip(*rows, strict=True)] if rows else [[] for _ in range(width)]


def merge_all(
    cur: Any,
    counts: dict[str, int],
    source_rows: SourceRows,
    type_rows: TypeRows,
    *,
    spare_shard: int,
) -> set[str]:
    """Merge the batches ``counts`` (id: events) whose folded rows are given, in
    the caller's transaction; the ids merged now: all of ``counts`` when none was
    merged before, else only their ledger rows were written (the ids returned)."""
    global _sql
    if _sql is None:
        _sql = _statement()
    ids = sorted(counts)
    events = sum(counts.values())
    minutes = minute_rows([(b, counts[b]) for b in ids])
    cur.execute(
        _sql,
        [
            timezone.now(),
            ids,
            [counts[b] for b in ids],
            len(ids),
            *_columns(source_rows, 4),
            *_columns(type_rows, 3),
            events,
            spare_shard,
            events,
            *_columns(minutes, 6),
        ],
    )
    return {str(row[0]) for row in cur.fetchall()}
