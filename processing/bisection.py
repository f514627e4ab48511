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
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from plugins.base import Batch

__all__ = ["BisectionResult", "FailedPart", "bisect", "run_budget"]


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
            except Exception as exc:
                pending.append(FailedPart(sub.id, start, stop, part.splits + 1, exc))
    return result
