"""A person's events erased from the queue (``manage.py privacy erase``): every
waiting batch task that holds one of them is rewritten without them (same task
id, batch id and enqueue time, signed again) or, left empty, removed. A task a
cluster holds (being processed, or released for redelivery) is not touched: it is
counted as in flight, and its events reach the archive or the dead letters, where
the erasure that follows (or a second run) finds them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from broker.interface import QueueBroker, queue_broker
from broker.packages import batch_without
from core.erasure import ErasureTarget

__all__ = ["QueueErased", "queue_erase"]

SCAN_CHUNK = 100  # tasks read per round trip


@dataclass(frozen=True)
class QueueErased:
    events: int  # the person's events taken out of waiting batches
    rewritten: int  # batches left with other events
    removed: int  # batches left empty, so removed
    in_flight: int  # batches holding the person's events that a cluster holds


def queue_erase(
    *,
    target: ErasureTarget,
    dry_run: bool = False,
    on_progress: Callable[[int], object] | None = None,
    queue: QueueBroker | None = None,
) -> QueueErased:
    """Erase the person's events from the batches waiting in the broker, each
    task its own statement or script (a task claimed meanwhile is left alone and
    counted in flight). With ``dry_run``: counted, nothing changed. ``queue``: the
    process's broker unless given."""
    queue = queue or queue_broker()
    events = rewritten = removed = in_flight = 0
    for tasks in queue.tasks_scan(chunk=SCAN_CHUNK):
        for task in tasks:
            found = batch_without(task.payload, target.matches)
            if found is None or found[1] == 0:
                continue
            payload, count = found
            if task.claimed:
                in_flight += 1
                continue
            if not dry_run and not queue.task_replace(task.key, payload):
                in_flight += 1  # claimed since it was read
                continue
            events += count
            if payload is None:
                removed += 1
            else:
                rewritten += 1
            if on_progress is not None and not dry_run:
                on_progress(count)
    return QueueErased(events=events, rewritten=rewritten, removed=removed, in_flight=in_flight)
