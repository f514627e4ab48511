"""The django-q2 task: one batch through the processor chain (and a claim's
batches as one task, :func:`process_batches`).

The task decides the fate of the failures it knows about itself (retries, then
bisection and dead letters: :mod:`processing.bisection`) and returns normally, so
django-q2 acknowledges it and never redelivers a failing batch forever. Only a
task that dies (worker killed, the database gone) is redelivered by the broker;
the StorageProcessor's batch-id ledger makes that harmless, and a redelivered
batch whose bisection had started resumes it (``redelivered=True``, set by our
brokers; a batch older than ``queue.retry`` is treated alike). A first delivery
pays no query for it.

A store that is unreachable (the database, or a plugin's own store) is an
outage, not a failure (:mod:`core.outage`): every plugin run and every write of
the task waits it out with backoff, spending no attempt and dead-lettering
nothing, for at most :data:`PAUSE_SHARE` of ``queue.timeout`` from the task's
start; past that the task ends with
:class:`~core.outage.StoreUnavailable`, unacknowledged, and its batches are
handed out again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic_core import from_json

from core.config import get_config
from core.metrics.recording import batch_observe, plugin_failed, plugin_observe
from core.outage import StoreUnavailable, outage_retry
from plugins.base import Batch, ProcessingError, Processor
from plugins.live import get_chains
from processing.bisection import bisect_and_dead_letter, bisections_started
from processing.dead_letters import dead_letter_create
from processing.retry import RetryPolicy, run_with_retries

__all__ = ["PAUSE_SHARE", "BatchReport", "plugin_run", "process_batch", "process_batches"]

log = logging.getLogger("telemetron.processing")

# The share of queue.timeout a task may wait for an unreachable store, from its
# start (the rest leaves it time to finish before django-q2's timeout).
PAUSE_SHARE = 0.8

T = TypeVar("T")


def _deadline() -> float:
    """Until when (``time.monotonic()``) a task starting now waits out an outage.
    Inline (``queue.workers = 0``) the task runs inside its request, which must
    answer within ``ingest.commit_timeout``: it waits half of that at most."""
    cfg = get_config()
    wait = PAUSE_SHARE * cfg.queue.timeout
    if cfg.queue.workers == 0:
        wait = min(wait, cfg.ingest.commit_timeout / 2)
    return time.monotonic() + wait


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
    run: _BatchRun,
    error: BaseException,
    attempts: int,
) -> set[int]:
    """Dead-letter what ``processor`` fails on for good: the batch bisected, or
    its one event. Returns the indices of the dead-lettered events."""
    batch = run.batch
    if len(batch) > 1:
        return bisect_and_dead_letter(
            plugin=processor.name,
            batch=batch,
            wire_events=run.wire,
            error=error,
            attempts=attempts,
            run=lambda part: plugin_run(processor, part),
            deadline=run.deadline,
        )
    outage_retry(
        lambda: dead_letter_create(
            batch_id=batch.id,
            plugin=processor.name,
            events=run.wire,
            error=error,
            attempts=attempts,
        ),
        deadline=run.deadline,
        doing="dead letter",
    )
    return set(range(len(batch)))


@dataclass
class _BatchRun:
    """A batch on its way through the chain."""

    batch: Batch
    wire: list[dict[str, Any]]
    resume: frozenset[str]
    report: BatchReport
    deadline: float  # of its task's wait for an unreachable store
    unprocessed: set[int] = field(default_factory=set)

    def waiting(self, fn: Callable[[], T], doing: str) -> T:
        """``fn()``, an outage waited out (core.outage)."""
        return outage_retry(fn, deadline=self.deadline, doing=doing)


def _plugin_on_batch(processor: Processor, run: _BatchRun, policy: RetryPolicy) -> None:
    """One plugin on one batch: its retries, then bisection and dead letters."""
    batch = run.batch
    if processor.name in run.resume and len(batch) > 1:
        error: BaseException = ProcessingError("bisection resumed on redelivery")
        attempts = 0
    else:
        outcome = run_with_retries(
            lambda: run.waiting(lambda: plugin_run(processor, batch), processor.name), policy
        )
        if outcome.ok:
            return
        assert outcome.error is not None
        plugin_failed(processor.name)
        error, attempts = outcome.error, outcome.attempts
    lost = _dead_letter(processor, run, error, attempts)
    if lost:
        run.report.dead_lettered[processor.name] = len(lost)
        run.unprocessed |= lost


def _plugin_on_batches(processor: Processor, runs: list[_BatchRun]) -> bool:
    """One attempt of ``processor.process_many`` on the batches; False if it
    raised (each batch then goes alone). Its time is shared out over the
    batches' duration observations."""
    start = time.perf_counter()
    ok = False
    try:
        runs[0].waiting(lambda: processor.process_many([run.batch for run in runs]), processor.name)
        ok = True
    except StoreUnavailable:
        raise  # the outage outlasted the task's wait: no attempt spent
    except Exception as exc:
        log.info("%s failed %d batches together (%s): each alone now", processor.name,
                 len(runs), exc)  # fmt: skip
    finally:
        share = (time.perf_counter() - start) / len(runs)
        for _ in runs:
            plugin_observe(processor.name, share, ok=ok)
    return ok


def _chain_run(runs: list[_BatchRun], chain: tuple[Processor, ...]) -> None:
    """Every processor on every batch, in chain order; a processor that takes
    batches together gets those not resuming its bisection in one call."""
    policy = _policy()
    for processor in chain:
        alone = runs
        if len(runs) > 1 and processor.processes_many():
            together = [run for run in runs if processor.name not in run.resume]
            if len(together) > 1 and _plugin_on_batches(processor, together):
                alone = [run for run in runs if processor.name in run.resume]
        for run in alone:
            _plugin_on_batch(processor, run, policy)
    for run in runs:
        run.report.processed = len(run.batch) - len(run.unprocessed)


def _prepared(
    batch_id: str, events: str, enqueued_at: float, redelivered: bool, *, deadline: float
) -> _BatchRun:
    wire: list[dict[str, Any]] = from_json(events)
    batch = Batch(id=batch_id, wire=wire)  # Event objects only if a plugin reads them
    maybe_redelivered = redelivered or time.time() - enqueued_at >= get_config().queue.retry
    resume: frozenset[str] = frozenset()
    if maybe_redelivered:
        resume = outage_retry(
            lambda: bisections_started(batch_id=batch_id), deadline=deadline, doing="bisections"
        )
    return _BatchRun(batch, wire, resume, BatchReport(batch_id, len(batch)), deadline)


def _observed(run: _BatchRun, enqueued_at: float) -> BatchReport:
    # events_processed: the events every plugin processed (after a bisection, the
    # events outside the dead-lettered parts).
    batch_observe(size=len(run.wire), lag_s=time.time() - enqueued_at,
                  processed=run.report.processed)  # fmt: skip
    return run.report


def process_batch(
    batch_id: str, events: str, enqueued_at: float, *, redelivered: bool = False
) -> BatchReport:
    """Entry point called by django-q2 workers (and inline in sync mode).

    ``events``: the wire events as one JSON text (what the commit enqueues:
    django-q2 pickles a task's arguments three times on its way, web → broker →
    worker → monitor, and one string costs a fraction of a hundred dicts).
    ``redelivered``: set by our brokers on a delivery after the first."""
    run = _prepared(batch_id, events, enqueued_at, redelivered, deadline=_deadline())
    _chain_run([run], tuple(get_chains().processors))
    return _observed(run, enqueued_at)


def process_batches(tasks: list[tuple[str, str, float, bool]]) -> list[BatchReport]:
    """Entry point of a claim's batch tasks coalesced into one by our brokers
    (:mod:`broker.coalesce`): each ``(batch_id, events, enqueued_at,
    redelivered)`` as :func:`process_batch` takes them. What each batch goes
    through is the same; processors that take batches together
    (:meth:`~plugins.base.Processor.process_many`, the StorageProcessor) get
    them in one call. The whole task is acknowledged at its end."""
    deadline = _deadline()
    runs = [_prepared(*task, deadline=deadline) for task in tasks]
    _chain_run(runs, tuple(get_chains().processors))
    return [_observed(run, task[2]) for run, task in zip(runs, tasks, strict=True)]
