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
row is written before the first part runs. Our brokers hand a task out again
within seconds of its cluster's death (broker/leases.py) and tell the task
so (``redelivered=True``); a redelivered batch, or one older than ``queue.retry``
(a broker that cannot tell), looks for those rows, and a plugin whose bisection
had started resumes it (straight to the parts, with the same ids) instead of
running the whole batch, which would count again the parts already processed.
A first delivery pays no query for it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from pydantic_core import from_json

from core.config import get_config
from core.metrics.recording import batch_observe, plugin_failed, plugin_observe
from plugins.base import Batch, ProcessingError, Processor
from plugins.live import get_chains
from processing.bisection import bisect_and_dead_letter, bisections_started
from processing.dead_letters import dead_letter_create
from processing.retry import RetryPolicy, run_with_retries

__all__ = [
    "BatchReport",
    "plugin_run",
    "process_batch",
    "process_batches",
    "processor_chain_run",
]

log = logging.getLogger("telemetron.processing")


@dataclass
class BatchReport:
    """What became of a batch: ``processed`` events went through every plugin;
    ``dead_lettered`` says how many each failing plugin dead-lettered."""

    batch_id: str
    events: int
    processed: int = 0
    dead_lettered: dict[str, int] = field(default_factory=dict)

    @property
    def failed(self) -> list[str]:
        """The plugins that dead-lettered events, in chain order."""
        return list(self.dead_lettered)


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


def _dead_letter(
    processor: Processor,
    batch: Batch,
    wire_events: list[dict[str, Any]],
    error: BaseException,
    attempts: int,
) -> set[int]:
    """Dead-letter what ``processor`` fails on for good: the batch bisected, or
    its one event. Returns the indices of the dead-lettered events."""
    if len(batch) > 1:
        return bisect_and_dead_letter(
            plugin=processor.name,
            batch=batch,
            wire_events=wire_events,
            error=error,
            attempts=attempts,
            run=lambda part: plugin_run(processor, part),
        )
    dead_letter_create(
        batch_id=batch.id,
        plugin=processor.name,
        events=wire_events,
        error=error,
        attempts=attempts,
    )
    return set(range(len(batch)))


@dataclass
class _Run:
    """A batch on its way through the chain."""

    batch: Batch
    wire: list[dict[str, Any]]
    resume: frozenset[str]
    report: BatchReport
    unprocessed: set[int] = field(default_factory=set)


def _step(processor: Processor, run: _Run, policy: RetryPolicy) -> None:
    """One plugin on one batch: its retries, then bisection and dead letters."""
    batch = run.batch
    if processor.name in run.resume and len(batch) > 1:
        error: BaseException = ProcessingError("bisection resumed on redelivery")
        attempts = 0
    else:
        outcome = run_with_retries(lambda: plugin_run(processor, batch), policy)
        if outcome.ok:
            return
        assert outcome.error is not None
        plugin_failed(processor.name)
        error, attempts = outcome.error, outcome.attempts
    lost = _dead_letter(processor, batch, run.wire, error, attempts)
    if lost:
        run.report.dead_lettered[processor.name] = len(lost)
        run.unprocessed |= lost


def _together(processor: Processor, runs: list[_Run]) -> bool:
    """One attempt of ``processor.process_many`` on the batches; False if it
    raised (each batch then goes alone). Its time is shared out over the
    batches' duration observations."""
    start = time.perf_counter()
    ok = False
    try:
        processor.process_many([run.batch for run in runs])
        ok = True
    except Exception as exc:
        log.info("%s failed %d batches together (%s): each alone now", processor.name,
                 len(runs), exc)  # fmt: skip
    finally:
        share = (time.perf_counter() - start) / len(runs)
        for _ in runs:
            plugin_observe(processor.name, share, ok=ok)
    return ok


def _chain_run(runs: list[_Run], chain: tuple[Processor, ...]) -> None:
    """Every processor on every batch, in chain order; a processor that takes
    batches together gets those not resuming its bisection in one call."""
    policy = _policy()
    for processor in chain:
        alone = runs
        if len(runs) > 1 and processor.processes_many():
            together = [run for run in runs if processor.name not in run.resume]
            if len(together) > 1 and _together(processor, together):
                alone = [run for run in runs if processor.name in run.resume]
        for run in alone:
            _step(processor, run, policy)
    for run in runs:
        run.report.processed = len(run.batch) - len(run.unprocessed)


def processor_chain_run(
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
    run = _Run(batch, wire_events, resume_bisection, BatchReport(batch.id, len(batch)))
    _chain_run([run], chain)
    return run.report


def _prepared(
    batch_id: str, events: str | list[dict[str, Any]], enqueued_at: float, redelivered: bool
) -> _Run:
    wire: list[dict[str, Any]] = from_json(events) if isinstance(events, str) else events
    batch = Batch(id=batch_id, wire=wire)  # Event objects only if a plugin reads them
    maybe_redelivered = redelivered or time.time() - enqueued_at >= get_config().queue.retry
    resume = bisections_started(batch_id=batch_id) if maybe_redelivered else frozenset()
    return _Run(batch, wire, resume, BatchReport(batch_id, len(batch)))


def _observed(run: _Run, enqueued_at: float) -> BatchReport:
    # events_processed: the events every plugin processed (after a bisection, the
    # events outside the dead-lettered parts).
    batch_observe(size=len(run.wire), lag_s=time.time() - enqueued_at,
                  processed=run.report.processed)  # fmt: skip
    return run.report


def process_batch(
    batch_id: str,
    events: str | list[dict[str, Any]],
    enqueued_at: float,
    *,
    redelivered: bool = False,
) -> BatchReport:
    """Entry point called by django-q2 workers (and inline in sync mode).

    ``events``: the wire events as one JSON text (what ingest enqueues: django-q2
    pickles a task's arguments three times on its way, web → broker → worker →
    monitor, and one string costs a fraction of a hundred dicts), or as a list.
    ``redelivered``: set by our brokers on a delivery after the first."""
    run = _prepared(batch_id, events, enqueued_at, redelivered)
    _chain_run([run], tuple(get_chains().processors))
    return _observed(run, enqueued_at)


def process_batches(tasks: list[tuple[str, str, float, bool]]) -> list[BatchReport]:
    """Entry point of a claim's batch tasks coalesced into one by our brokers
    (:mod:`broker.coalesce`): each ``(batch_id, events, enqueued_at,
    redelivered)`` as :func:`process_batch` takes them. What each batch goes
    through is the same; processors that take batches together
    (:meth:`~plugins.base.Processor.process_many`, the StorageProcessor) get
    them in one call. The whole task is acknowledged at its end."""
    runs = [_prepared(*task) for task in tasks]
    _chain_run(runs, tuple(get_chains().processors))
    return [_observed(run, task[2]) for run, task in zip(runs, tasks, strict=True)]
