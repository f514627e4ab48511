"""The django-q2 task: one batch through the processor chain.

The task decides the fate of the failures it knows about itself (retries, then
a dead-letter row) and returns normally, so django-q2 acknowledges it and never
redelivers a failing batch forever. Only a task that dies (worker killed, the
database gone) is redelivered by the broker; the StorageProcessor's batch-id
ledger makes that harmless.

Poison events. When a plugin still fails after its ``processor.retry_attempts``
on a batch of more than one event, the batch is bisected
(:mod:`processing.bisection`): halved, each half run once, a failing half halved
again, so only the events the plugin fails on are dead-lettered and the others
are processed. Each part has a stable id derived from the batch's
(``<id>.0``/``<id>.1``), kept on its dead letter with its split count.

Retries inside a bisection: none. Each part gets ONE run. The whole batch has
used its retries already, so a transient failure has had its chance; a retry
loop per part would multiply the delay (``retry_attempts * retry_delay`` per
part, ~2·log₂ n parts). A part that fails once is dead-lettered with its events,
never lost, and a replay runs it again. The dead letter's ``attempts`` counts
every run that included its events (the batch's attempts plus one per split).

Redelivery in the middle of a bisection: a :class:`~processing.models.Bisection`
row is written before the first part runs. The broker redelivers a task only
``queue.retry`` seconds after handing it out, so a delivery younger than that is
a first one; an older one looks for those rows, and a plugin whose bisection had
started resumes it (straight to the parts, with the same ids) instead of running
the whole batch, which would count again the parts already processed.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from plugins.base import Batch, Event, ProcessingError, Processor
from plugins.loader import get_chains
from processing.bisection import bisect
from processing.retry import RetryPolicy, run_with_retries
from processing.services import (
    bisection_finish,
    bisection_start,
    bisections_started,
    dead_letter_create,
)
from telemetron_site.config import get_config
from telemetron_site.metrics import batch_observe, plugin_failed, plugin_observe

__all__ = ["BatchReport", "batch_process", "plugin_run", "process_batch"]

log = logging.getLogger("telemetron.processing")

# {"batch_id", "events", "failed": plugins that dead-lettered events,
#  "dead_lettered": {plugin: events}, "processed": events every plugin processed}
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


def _bisect(
    processor: Processor,
    batch: Batch,
    wire_events: list[dict[str, Any]],
    error: BaseException,
    attempts: int,
) -> set[int]:
    """Bisect the batch ``processor`` failed on; dead-letter the parts still
    failing. Returns the indices of the dead-lettered events."""
    bisection_start(batch_id=batch.id, plugin=processor.name, events=len(batch.events))
    result = bisect(batch=batch, error=error, run=lambda part: plugin_run(processor, part))
    for part in result.failed:
        dead_letter_create(
            batch_id=part.batch_id,
            plugin=processor.name,
            events=wire_events[part.start : part.stop],
            error=part.error,
            attempts=attempts + part.splits,
            splits=part.splits,
        )
    bisection_finish(
        batch_id=batch.id,
        plugin=processor.name,
        splits=result.splits,
        runs=result.runs,
        dead_lettered_events=result.failed_events,
    )
    log.warning(
        "bisected batch %s for plugin %s: %d splits, %d part runs; %d of %d events"
        " processed, %d dead-lettered in %d parts",
        batch.id,
        processor.name,
        result.splits,
        result.runs,
        len(batch.events) - result.failed_events,
        len(batch.events),
        result.failed_events,
        len(result.failed),
        extra={
            "batch_id": batch.id,
            "plugin": processor.name,
            "splits": result.splits,
            "runs": result.runs,
            "dead_lettered_events": result.failed_events,
        },
    )
    return {i for part in result.failed for i in range(part.start, part.stop)}


def batch_process(
    *,
    batch: Batch,
    wire_events: list[dict[str, Any]],
    processors: tuple[Processor, ...] | None = None,
    resume_bisection: frozenset[str] = frozenset(),
) -> BatchReport:
    """Run every processor on the batch; bisect and dead-letter what fails for good.

    ``resume_bisection``: plugins whose bisection of this batch had started on an
    earlier delivery; they go straight to the parts.
    """
    chain = tuple(get_chains().processors) if processors is None else processors
    policy = _policy()
    failed: list[str] = []
    dead_lettered: dict[str, int] = {}
    unprocessed: set[int] = set()
    for processor in chain:
        if processor.name in resume_bisection and len(batch.events) > 1:
            error: BaseException = ProcessingError("bisection resumed on redelivery")
            attempts = 0
        else:
            outcome = run_with_retries(lambda p=processor: plugin_run(p, batch), policy)  # type: ignore[misc]
            if outcome.ok:
                continue
            assert outcome.error is not None
            plugin_failed(processor.name)
            error, attempts = outcome.error, outcome.attempts
        if len(batch.events) > 1:
            lost = _bisect(processor, batch, wire_events, error, attempts)
        else:
            dead_letter_create(
                batch_id=batch.id,
                plugin=processor.name,
                events=wire_events,
                error=error,
                attempts=attempts,
            )
            lost = set(range(len(batch.events)))
        if lost:
            failed.append(processor.name)
            dead_lettered[processor.name] = len(lost)
            unprocessed |= lost
    return {
        "batch_id": batch.id,
        "events": len(batch.events),
        "failed": failed,
        "dead_lettered": dead_lettered,
        "processed": len(batch.events) - len(unprocessed),
    }


def process_batch(
    batch_id: str, events: str | list[dict[str, Any]], enqueued_at: float
) -> BatchReport:
    """Entry point called by django-q2 workers (and inline in sync mode).

    ``events``: the wire events as one JSON text (what ingest enqueues: django-q2
    pickles a task's arguments three times on its way, web → broker → worker →
    monitor, and one string costs a fraction of a hundred dicts), or as a list."""
    wire: list[dict[str, Any]] = json.loads(events) if isinstance(events, str) else events
    batch = Batch(id=batch_id, events=tuple(Event.from_wire(e) for e in wire))
    maybe_redelivered = time.time() - enqueued_at >= get_config().queue.retry
    resume = bisections_started(batch_id=batch_id) if maybe_redelivered else frozenset()
    report = batch_process(batch=batch, wire_events=wire, resume_bisection=resume)
    # events_processed: the events every plugin processed (after a bisection, the
    # events outside the dead-lettered parts).
    batch_observe(size=len(wire), lag_s=time.time() - enqueued_at, processed=report["processed"])
    return report
