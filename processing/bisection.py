"""Bisection of a batch a processor plugin failed on, so a poison event does not
hold the other events of its batch hostage.

The failing batch is halved; each half gets ONE run (the whole batch has already
used its ``processor.retry_attempts``, so a per-half retry loop would multiply
the time spent on a batch that is known to be bad). A half that fails is halved
again, breadth first, until its parts are single events. Each part has a stable
id derived from its parent's (``<batch id>.0`` / ``<batch id>.1``, recursively),
so an idempotent plugin (the StorageProcessor's batch ledger) stays exactly-once
on redelivery and on replay of a part.

The number of part runs is bounded by ``2·⌈log₂ n⌉``: exactly what isolating one
poison event in a batch of ``n`` takes. When the budget is spent (several poison
events, or a plugin that fails on everything), each part still failing is handed
back whole, to be dead-lettered with its events: nothing is ever dropped.

Each bisection is recorded (:class:`~processing.models.Bisection`) before its
first part runs, so a redelivered batch resumes it instead of running the whole
batch again (see :mod:`processing.tasks`); :func:`bisect_and_dead_letter` does the
three steps for the task. A store unreachable meanwhile is waited out
(:func:`core.outage.outage_retry`): a part does not fail for it, and no dead
letter is written for it.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from django.utils import timezone

from core.outage import StoreUnavailable, outage_retry
from plugins.base import Batch
from processing.dead_letters import dead_letter_create
from processing.models import Bisection

__all__ = [
    "BisectionResult",
    "FailedPart",
    "bisect",
    "bisect_and_dead_letter",
    "bisection_finish",
    "bisection_start",
    "bisections_started",
    "run_budget",
]

log = logging.getLogger("telemetron.processing")


@dataclass(frozen=True)
class FailedPart:
    """A part of the batch still failing: events ``[start, stop)`` of the batch."""

    batch_id: str
    start: int
    stop: int
    splits: int  # halvings from the original batch to this part
    error: BaseException


@dataclass
class BisectionResult:
    splits: int = 0
    runs: int = 0
    failed: list[FailedPart] = field(default_factory=list)

    @property
    def failed_events(self) -> int:
        return sum(p.stop - p.start for p in self.failed)


def run_budget(events: int) -> int:
    """Part runs allowed for a batch of ``events``: enough to isolate one poison event."""
    return 2 * math.ceil(math.log2(events)) if events > 1 else 0


def bisect(*, batch: Batch, error: BaseException, run: Callable[[Batch], None]) -> BisectionResult:
    """Halve ``batch`` (which failed with ``error``) until only failing events are
    left or the run budget is spent. ``run`` raises when the plugin fails on a part."""
    result = BisectionResult()
    budget = run_budget(len(batch.events))
    pending: deque[FailedPart] = deque([FailedPart(batch.id, 0, len(batch.events), 0, error)])
    while pending:
        part = pending.popleft()
        if part.stop - part.start < 2 or result.runs + 2 > budget:
            result.failed.append(part)
            continue
        result.splits += 1
        mid = (part.start + part.stop) // 2
        for index, (start, stop) in enumerate(((part.start, mid), (mid, part.stop))):
            sub = Batch(id=f"{part.batch_id}.{index}", events=batch.events[start:stop])
            result.runs += 1
            try:
                run(sub)
            except StoreUnavailable:
                raise  # an outage: not the part's failure
            except Exception as exc:
                pending.append(FailedPart(sub.id, start, stop, part.splits + 1, exc))
    return result


# --- the records ---------------------------------------------------------------


def bisection_start(*, batch_id: str, plugin: str, events: int) -> None:
    """Note that ``plugin``'s failure on this batch is being bisected (a redelivery
    of the batch then resumes the bisection: see processing.tasks)."""
    Bisection.objects.get_or_create(batch_id=batch_id, plugin=plugin, defaults={"events": events})


def bisection_finish(
    *, batch_id: str, plugin: str, splits: int, runs: int, dead_lettered_events: int
) -> None:
    Bisection.objects.filter(batch_id=batch_id, plugin=plugin).update(
        finished_at=timezone.now(),
        splits=splits,
        runs=runs,
        dead_lettered_events=dead_lettered_events,
    )


def bisections_started(*, batch_id: str) -> frozenset[str]:
    """The plugins whose failure on this batch was being bisected."""
    return frozenset(Bisection.objects.filter(batch_id=batch_id).values_list("plugin", flat=True))


# --- for the task ------------------------------------------------------------------


def _part_dead_letter(
    plugin: str, part: FailedPart, wire_events: Sequence[dict[str, Any]], attempts: int
) -> None:
    dead_letter_create(
        batch_id=part.batch_id,
        plugin=plugin,
        events=list(wire_events[part.start : part.stop]),
        error=part.error,
        attempts=attempts + part.splits,
        splits=part.splits,
    )


def bisect_and_dead_letter(
    *,
    plugin: str,
    batch: Batch,
    wire_events: Sequence[dict[str, Any]],
    error: BaseException,
    attempts: int,
    run: Callable[[Batch], None],
    deadline: float,
) -> set[int]:
    """Bisect the batch ``plugin`` failed on (``run`` runs it on a part), recorded;
    dead-letter the parts still failing. Returns the indices of the dead-lettered
    events. A store unreachable meanwhile is waited out until ``deadline``
    (``time.monotonic()``), then :class:`~core.outage.StoreUnavailable`."""

    def waiting(fn: Callable[[], object], doing: str) -> None:
        outage_retry(fn, deadline=deadline, doing=doing)

    waiting(
        lambda: bisection_start(batch_id=batch.id, plugin=plugin, events=len(batch.events)),
        "bisection",
    )
    result = bisect(batch=batch, error=error, run=lambda part: waiting(lambda: run(part), plugin))
    for part in result.failed:
        waiting(partial(_part_dead_letter, plugin, part, wire_events, attempts), "dead letter")
    waiting(
        lambda: bisection_finish(
            batch_id=batch.id,
            plugin=plugin,
            splits=result.splits,
            runs=result.runs,
            dead_lettered_events=result.failed_events,
        ),
        "bisection",
    )
    processed = len(batch.events) - result.failed_events
    log.warning(
        "bisected batch %s for plugin %s: %d splits, %d part runs; %d of %d events"
        " processed, %d dead-lettered in %d parts",
        batch.id,
        plugin,
        result.splits,
        result.runs,
        processed,
        len(batch.events),
        result.failed_events,
        len(result.failed),
        extra={
            "batch_id": batch.id,
            "plugin": plugin,
            "splits": result.splits,
            "runs": result.runs,
            "dead_lettered_events": result.failed_events,
        },
    )
    return {i for part in result.failed for i in range(part.start, part.stop)}
