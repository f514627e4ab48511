"""The raw-event archive (the ArchiveProcessor's tables): every event as it was
accepted, with the time it was received and its batch, and the ledger of the
batches archived, so a redelivered or replayed batch is archived once."""

from __future__ import annotations

from django.db import models

from core.fields import U64Field

__all__ = ["ArchivedBatch", "ArchivedEvent"]


class ArchivedEvent(models.Model):
    id = models.BigAutoField(primary_key=True)
    source_id = U64Field()
    type = models.CharField(max_length=256)
    timestamp = models.DateTimeField(help_text="The event's own time (UTC).")
    data = models.JSONField(null=True, blank=True)
    received_at = models.DateTimeField(help_text="When ingest committed the event's batch.")
    batch_id = models.CharField(max_length=64, help_text="The batch (or bisected part) id.")

    class Meta:
        verbose_name = "archived event"
        indexes = [
            # Export by source and time, in time order (then id: a batch shares one
            # received_at), streamed straight off the index (bench/RESULTS.md).
            models.Index(fields=["source_id", "received_at", "id"], name="archive_source_time"),
            # Export of every source by time; purge by age.
            models.Index(fields=["received_at", "id"], name="archive_time"),
        ]

    def __str__(self) -> str:
        return f"{self.source_id}/{self.type} at {self.timestamp:%Y-%m-%dT%H:%M:%SZ}"


class ArchivedBatch(models.Model):
    """The batches whose events were archived: written in the same transaction
    as the events, so a batch seen before is skipped (exactly once per batch id)."""

    batch_id = models.CharField(max_length=64, primary_key=True)
    events = models.IntegerField()
    archived_at = models.DateTimeField(db_index=True)

    class Meta:
        verbose_name_plural = "archived batches"

    def __str__(self) -> str:
        return self.batch_id
