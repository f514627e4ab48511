"""The archive's writes: a batch archived once (:func:`batch_archive`), and the
purge of old events (:func:`archive_purge`)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from archive.models import ArchivedBatch, ArchivedEvent
from core.fields import u64_to_db
from plugins.base import Event

__all__ = ["PURGE_CHUNK", "archive_purge", "archive_purge_count", "batch_archive"]

# Rows deleted per statement (and per transaction) by a purge: short enough not
# to hold ingest's writers back for long, large enough to be cheap per row.
PURGE_CHUNK = 5000

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _insert(cur: Any, events: Sequence[Event], received_at: datetime, batch_id: str) -> None:
    """The events' rows. PostgreSQL: one INSERT from one JSON text of the rows,
    expanded by the server (psycopg's per-value work cost more than the database's:
    a 100-row VALUES list ~80 µs of CPU per event, ``executemany`` ~30, arrays
    ~25; bench/RESULTS.md). SQLite: ``executemany``, a C loop (expanding one JSON
    text with json_each cost more there: SQLite's work is this process's)."""
    table = connection.ops.quote_name(ArchivedEvent._meta.db_table)
    columns = "source_id, type, timestamp, data, received_at, batch_id"
    if connection.vendor == "postgresql":
        rows = [[u64_to_db(e.source_id), e.type, e.timestamp.isoformat(), e.data] for e in events]
        cur.execute(
            f"INSERT INTO {table} ({columns})"
            " SELECT (r->>0)::bigint, r->>1, (r->>2)::timestamptz, NULLIF(r->3, 'null'), %s, %s"
            " FROM jsonb_array_elements(%s::jsonb) AS r",
            [received_at, batch_id, _dumps(rows)],
        )
        return
    adapt = connection.ops.adapt_datetimefield_value
    received = adapt(received_at)
    cur.executemany(
        f"INSERT INTO {table} ({columns}) VALUES (%s, %s, %s, %s, %s, %s)",
        [
            (
                u64_to_db(e.source_id),
                e.type,
                adapt(e.timestamp),
                None if e.data is None else _dumps(e.data),
                received,
                batch_id,
            )
            for e in events
        ],
    )


def batch_archive(*, batch_id: str, events: Sequence[Event], received_at: datetime) -> bool:
    """Archive the events of a batch, once per batch id: the ledger row and the
    events in one transaction. False when the batch was archived before (a
    redelivery, a replay). Raw SQL (see ``_insert``): the ORM's ``bulk_create``
    cost ~70 µs of CPU per event."""
    ledger = connection.ops.quote_name(ArchivedBatch._meta.db_table)
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(
            f"INSERT INTO {ledger} (batch_id, events, archived_at) VALUES (%s, %s, %s)"
            " ON CONFLICT (batch_id) DO NOTHING",
            [batch_id, len(events), now],
        )
        if cur.rowcount == 0:
            return False
        _insert(cur, events, received_at, batch_id)
    return True


def archive_purge_count(*, before: datetime) -> int:
    """Events received before ``before`` (what a purge would delete)."""
    return ArchivedEvent.objects.filter(received_at__lt=before).count()


def archive_purge(*, before: datetime, on_progress: Callable[[int], object] | None = None) -> int:
    """Delete the events received before ``before``, ``PURGE_CHUNK`` rows per
    transaction, and the ledger rows of batches archived before it. Returns the
    events deleted."""
    q = connection.ops.quote_name
    events = q(ArchivedEvent._meta.db_table)
    chunk = (
        f"DELETE FROM {events} WHERE id IN (SELECT id FROM {events}"
        f" WHERE received_at < %s ORDER BY received_at LIMIT {PURGE_CHUNK})"
    )
    deleted = 0
    while True:
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute(chunk, [connection.ops.adapt_datetimefield_value(before)])
            count = cur.rowcount
        deleted += count
        if on_progress is not None and count:
            on_progress(count)
        if count < PURGE_CHUNK:
            break
    ArchivedBatch.objects.filter(archived_at__lt=before).delete()
    return deleted
