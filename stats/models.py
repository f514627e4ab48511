"""The stats store's tables (the ``database`` store).

Timestamps are kept as microseconds since the epoch (UTC): exact, comparable with
MIN/MAX on every database, and cheap to merge.
"""

from __future__ import annotations

from django.db import models

from core.fields import U64Field


class SourceStats(models.Model):
    source_id = U64Field(primary_key=True)
    total_events = models.BigIntegerField()
    first_event_us = models.BigIntegerField()
    last_event_us = models.BigIntegerField()

    class Meta:
        verbose_name = "source statistics"
        verbose_name_plural = "source statistics"

    def __str__(self) -> str:
        return f"source {self.source_id}"


class SourceEventType(models.Model):
    source_id = U64Field()
    event_type = models.TextField()
    count = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["source_id", "event_type"], name="stats_source_type_uniq"
            )
        ]

    def __str__(self) -> str:
        return f"{self.source_id}/{self.event_type}"


class StatsTotals(models.Model):
    """The global counts in shard rows (ids 1-64, stats.store.TOTALS_SHARDS):
    each merge adds to one of them, GET /stats sums them (O(1) in sources)."""

    sources_count = models.BigIntegerField(default=0)
    events_count = models.BigIntegerField(default=0)

    class Meta:
        verbose_name_plural = "stats totals"

    def __str__(self) -> str:
        return f"{self.sources_count} sources, {self.events_count} events"


class ProcessedBatch(models.Model):
    """The batches whose stats were merged: recorded in the merge's transaction,
    so a redelivered or replayed batch is never counted twice."""

    batch_id = models.CharField(max_length=64, primary_key=True)
    events = models.IntegerField()
    processed_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.batch_id


class MinuteCounts(models.Model):
    """Events per minute for the admin's dashboard, written by the merge (one
    upsert per batch, :mod:`stats.minutes`). A ring: the row of a minute is
    ``(minute % RING_MINUTES) * SHARDS + shard``, so the table never holds more
    than ``RING_MINUTES * SHARDS`` rows, and a minute's row is taken over by the
    minute ``RING_MINUTES`` later (retention bounded with no purge statement).

    ``accepted``: events by the minute their batch was received (the time its
    UUIDv7 id carries), counted when that batch is merged; ``processed``: events
    by the minute they were merged; ``lag_ms_sum``/``lag_ms_max``: received →
    merged, per event, of the events processed in that minute."""

    id = models.IntegerField(primary_key=True)
    minute = models.BigIntegerField(help_text="Minutes since the Unix epoch (UTC).")
    accepted = models.BigIntegerField(default=0)
    processed = models.BigIntegerField(default=0)
    lag_ms_sum = models.BigIntegerField(default=0)
    lag_ms_max = models.BigIntegerField(default=0)

    class Meta:
        verbose_name_plural = "minute counts"

    def __str__(self) -> str:
        return f"minute {self.minute}: {self.accepted} accepted, {self.processed} processed"
