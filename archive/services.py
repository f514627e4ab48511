"""The archive's writes: a batch archived once (:func:`batch_archive`), and the
purge of old events (:func:`archive_purge`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone

from archive.models import ArchivedBatch, ArchivedEvent
from plugins.base import Event

__all__ = ["PURGE_CHUNK", "archive_purge", "archive_purge_count", "batch_archive"]

# Rows deleted per statement (and per transaction) by a purge: short enough not
# to hold ingest's writers back for long, large enough to be cheap per row.
PURGE_CHUNK = 5000


def batch_archive(*, batch_id: str, events: Sequence[Event], received_at: datetime) -> bool:
    """Archive the events of a batch, once per batch id: the ledger row and the
    events in one transaction. False when the batch was archived before (a
    redelivery, a replay)."""
    table = connection.ops.quote_name(ArchivedBatch._meta.db_table)
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(
            f"INSERT INTO {table} (batch_id, events, archived_at) VALUES (%s, %s, %s)"
            " ON CONFLICT (batch_id) DO NOTHING",
            [batch_id, len(events), connection.ops.adapt_datetimefield_value(timezone.now())],
        )
        if cur.rowcount == 0:
            return False
        ArchivedEvent.objects.bulk_create(
            [
                ArchivedEvent(
                    source_id=e.source_id,
                    type=e.type,
                    timestamp=e.timestamp,
                    data=e.data,
                    received_at=received_at,
                    batch_id=batch_id,
                )
                for e in events
            ],
            batch_size=500,
        )
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
