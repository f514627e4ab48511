"""The django-q2 task: one batch through the processor chain.

The task decides the fate of the failures it knows about itself (retries, then
a dead-letter row) and returns normally, so django-q2 acknowledges it and never
redelivers a failing batch forever. Only a task that dies (worker killed, the
database gone) is redelivered by the broker; the StorageProcessor's batch-id
ledger makes that harmless.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from plugins.base import Batch, Event, Processor
from plugins.loader import get_chains
from processing.retry import RetryPolicy, run_with_retries
from processing.services import dead_letter_create
from telemetron_site.config import get_config
from telemetron_site.metrics import batch_observe, plugin_failed, plugin_observe

__all__ = ["BatchReport", "batch_process", "plugin_run", "process_batch"]

log = logging.getLogger("telemetron.processing")

BatchReport = dict[str, Any]


def _policy() -> RetryPolicy:
    cfg = get_config().processor
    return RetryPolicy(attempts=cfg.retry_attempts, delay_s=cfg.retry_delay / 1000)


def plugin_run(processor: Processor, batch: Batch) -> None:
    """One attempt of a plugin on a batch, timed into its duration histogram."""
    start = time.perf_counter()
    ok = False
    try:
        processor.process(batch)
        ok = True
    finally:
        plugin_observe(processor.name, time.perf_counter() - start, ok=ok)


def batch_process(
    *,
    batch: Batch,
    wire_events: list[dict[str, Any]],
    processors: tuple[Processor, ...] | None = None,
) -> BatchReport:
    """Run every processor on the batch; dead-letter the ones that fail for good."""
    chain = tuple(get_chains().processors) if processors is None else processors
    policy = _policy()
    failed: list[str] = []
    for processor in chain:
        outcome = run_with_retries(lambda p=processor: plugin_run(p, batch), policy)  # type: ignore[misc]
        if not outcome.ok:
            assert outcome.error is not None
            plugin_failed(processor.name)
            failed.append(processor.name)
            dead_letter_create(
                batch_id=batch.id,
                plugin=processor.name,
                events=wire_events,
                error=outcome.error,
                attempts=outcome.attempts,
            )
    return {"batch_id": batch.id, "events": len(batch.events), "failed": failed}


def process_batch(batch_id: str, events: list[dict[str, Any]], enqueued_at: float) -> BatchReport:
    """Entry point called by django-q2 workers (and inline in sync mode)."""
    batch = Batch(id=batch_id, events=tuple(Event.from_wire(e) for e in events))
    report = batch_process(batch=batch, wire_events=events)
    # events_processed counts the events of batches every plugin processed (DESIGN §4).
    batch_observe(size=len(events), lag_s=time.time() - enqueued_at, processed=not report["failed"])
    return report
