"""The StorageProcessor: the original service's name, so its config.toml keeps
working. Folds each batch in memory and merges it into the stats store once."""

from __future__ import annotations

from plugins.base import Batch, Processor
from stats.aggregator import aggregate_wire
from stats.store import MemoryStore, get_store

__all__ = ["StorageProcessor"]


class StorageProcessor(Processor):
    """Per-source statistics (total, first/last event time, count per type)."""

    name = "StorageProcessor"

    def process(self, batch: Batch) -> None:
        get_store().merge(batch_id=batch.id, aggregates=aggregate_wire(batch.wire))

    def process_many(self, batches: list[Batch]) -> None:
        """One merge, one transaction: the batches' rows written once."""
        get_store().merge_many([(b.id, b.wire) for b in batches])

    def state_is_process_local(self) -> bool:
        return isinstance(get_store(), MemoryStore)
