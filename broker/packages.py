"""A batch as a queued task: the signed django-q2 package of
:func:`processing.tasks.process_batch` that a commit writes, and what a claim
reads back from one (its arguments, the redelivery mark).

The broker sits below processing (docs/architecture.md, "Layers"), so it names
the task functions by their paths, as django-q2 does; a test checks that they
resolve.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from django_q.signing import BadSignature, SignedPackage
from pydantic_core import from_json, to_json

from plugins.base import batch_id_new

__all__ = [
    "PROCESS_MANY",
    "PROCESS_TASK",
    "BatchArgs",
    "WireEvent",
    "batch_args",
    "batch_package",
    "batch_task_args",
    "batch_without",
    "mark_redelivered",
    "wire_json",
]

WireEvent = dict[str, Any]

# The task of one batch, and of a claim's batch tasks run as one (broker/coalesce.py).
PROCESS_TASK = "processing.tasks.process_batch"
PROCESS_MANY = "processing.tasks.process_batches"

# A batch task's (batch_id, events as JSON, enqueued_at, redelivered).
BatchArgs = tuple[str, str, float, bool]


def wire_json(events: list[WireEvent]) -> str:
    """The events as one JSON text, written by pydantic-core in one call (a
    tenth of ``json.dumps``'s time); Infinity stays ``Infinity`` (a float that
    overflowed in an accepted event's data), as ``json.dumps`` writes it."""
    return to_json(events, inf_nan_mode="constants").decode()


def batch_task_args(events: list[WireEvent]) -> tuple[str, str, float]:
    """``process_batch``'s arguments for a new batch of ``events``: a new batch
    id (a UUIDv7: it carries the time the batch was received), the events as
    one JSON text (see processing.tasks.process_batch) and the time now."""
    return batch_id_new(), wire_json(events), time.time()


def batch_package(events: list[WireEvent]) -> str:
    """The signed task package ``async_task`` would write for a new batch of
    ``events``, without its extras no task of ours uses (a humanhash name, the
    ``pre_enqueue`` signal, an INFO log line per task)."""
    from django.utils import timezone
    from django_q.conf import Conf

    args = batch_task_args(events)
    task: dict[str, Any] = {
        "id": uuid.uuid4().hex,
        "name": args[0],
        "func": PROCESS_TASK,
        "args": args,
    }
    if Conf.ACK_FAILURES:
        task["ack_failure"] = True
    task["kwargs"] = {}
    task["started"] = timezone.now()
    return str(SignedPackage.dumps(task))


def _loaded(payload: str) -> dict[str, Any] | None:
    try:
        return dict(SignedPackage.loads(payload))
    except (BadSignature, TypeError, ValueError):
        return None  # the pusher reports it


def mark_redelivered(payload: str) -> str:
    """A batch task's package, re-signed with ``redelivered=True`` for
    :func:`processing.tasks.process_batch` (which then looks for a bisection to
    resume); any other task as it is. Costs a package load and dump, paid on
    redeliveries only."""
    task = _loaded(payload)
    if task is None or task.get("func") != PROCESS_TASK:
        return payload
    task["kwargs"] = {**task.get("kwargs", {}), "redelivered": True}
    return str(SignedPackage.dumps(task))


def batch_args(payload: str) -> tuple[BatchArgs, dict[str, Any]] | None:
    """A batch task's arguments and its loaded package; None for anything else."""
    task = _loaded(payload)
    if task is None:
        return None
    args = task.get("args")
    if task.get("func") != PROCESS_TASK or not isinstance(args, tuple) or len(args) != 3:
        return None
    batch_id, events, enqueued_at = args
    if not isinstance(events, str):
        return None
    redelivered = bool(task.get("kwargs", {}).get("redelivered", False))
    return (batch_id, events, enqueued_at, redelivered), task


def batch_without(payload: str, drop: Callable[[WireEvent], bool]) -> tuple[str | None, int] | None:
    """A batch task's package less the events ``drop`` picks, and how many it
    picked: re-signed (the package is signed with the secret key), with the same
    task id, batch id and enqueue time; None for the package when no event is
    left, the package itself when none was picked. None for anything but a
    batch task."""
    found = batch_args(payload)
    if found is None:
        return None
    (batch_id, events, enqueued_at, _), task = found
    wire: list[WireEvent] = from_json(events)
    kept = [event for event in wire if not drop(event)]
    removed = len(wire) - len(kept)
    if not removed:
        return payload, 0
    if not kept:
        return None, removed
    task["args"] = (batch_id, wire_json(kept), enqueued_at)
    return str(SignedPackage.dumps(task)), removed
