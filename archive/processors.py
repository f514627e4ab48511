"""The ArchiveProcessor: every raw event kept (source, type, timestamp, data,
received time, batch id), so nothing is thrown away after aggregation; exported
and purged by ``manage.py archive``."""

from __future__ import annotations

from django.utils import timezone

from archive.services import batch_archive
from plugins.base import Batch, Processor

__all__ = ["ArchiveProcessor"]


class ArchiveProcessor(Processor):
    """Keep every event as received, once per batch id (a redelivered or replayed
    batch is not archived twice); `manage.py archive export` streams them as JSON
    Lines or CSV, `manage.py archive purge` deletes old ones.

    No parameters: the retention is the `archive.retention` key of config.toml."""

    name = "ArchiveProcessor"

    def process(self, batch: Batch) -> None:
        # The batch id carries the time ingest committed it; an id without it (a
        # batch queued before ids did) is stamped with the time it is archived.
        received_at = batch.received_at or timezone.now()
        batch_archive(batch_id=batch.id, events=batch.events, received_at=received_at)
