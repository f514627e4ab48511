"""The broker as the rest of the service sees it: the process's django-q2 broker,
built once (building one costs ~100 µs, DESIGN §10; ingest, backpressure,
/readyz and /metrics all use it), and the commit of batches to it.

Which broker class that is comes from ``Q_CLUSTER`` (the settings): ours,
:mod:`processing.broker` on the database or :mod:`processing.redis_broker`.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from datetime import datetime
from typing import Any

from pydantic_core import to_json

from plugins.base import batch_id_new, batch_received_at
from telemetron_site.process_wide import process_wide

__all__ = [
    "PROCESS_TASK",
    "WireEvent",
    "broker",
    "broker_commit",
    "oldest_batch_received_at",
    "wire_json",
]

WireEvent = dict[str, Any]

PROCESS_TASK = "processing.tasks.process_batch"


@process_wide
def broker() -> Any:
    """The process's django-q2 broker."""
    from django_q.brokers import get_broker

    return get_broker()


def wire_json(events: list[WireEvent]) -> str:
    """The events as one JSON text, written by pydantic-core in one call (a
    tenth of ``json.dumps``'s time); Infinity stays ``Infinity`` (a float that
    overflowed in an accepted event's data), as ``json.dumps`` writes it."""
    return to_json(events, inf_nan_mode="constants").decode()


def _enqueue(queue: Any, events: list[WireEvent]) -> None:
    from django_q.conf import Conf

    batch_id = batch_id_new()  # a UUIDv7: it carries the time the batch was received
    # The events as one JSON text: see processing.tasks.process_batch.
    args = (batch_id, wire_json(events), time.time())
    if Conf.SYNC or Conf.CACHED:  # run inline / results cached: django-q2's own way
        from django_q.tasks import async_task

        async_task(PROCESS_TASK, *args, broker=queue, task_name=batch_id)
        return
    queue.enqueue(_package(batch_id, args))


def _package(batch_id: str, args: tuple[Any, ...]) -> str:
    """The signed task package ``async_task`` would write for these arguments,
    without its extras no task of ours uses (a humanhash name, the
    ``pre_enqueue`` signal, an INFO log line per task)."""
    from django.utils import timezone
    from django_q.conf import Conf
    from django_q.signing import SignedPackage

    task: dict[str, Any] = {
        "id": uuid.uuid4().hex,
        "name": batch_id,
        "func": PROCESS_TASK,
        "args": args,
    }
    if Conf.ACK_FAILURES:
        task["ack_failure"] = True
    task["kwargs"] = {}
    task["started"] = timezone.now()
    return str(SignedPackage.dumps(task))


def broker_commit(batches: list[list[WireEvent]]) -> None:
    """Write each batch as one django-q2 task; several batches all or none: in
    one database transaction on the ORM broker, one MULTI/EXEC on Redis (our
    brokers' ``atomic()``), in turn on a broker without it."""
    queue = broker()
    if len(batches) == 1:
        _enqueue(queue, batches[0])
        return
    atomic = getattr(queue, "atomic", None)
    with atomic() if atomic is not None else contextlib.nullcontext():
        for events in batches:
            _enqueue(queue, events)


def oldest_batch_received_at() -> datetime | None:
    """When the oldest batch still in the broker (waiting, or claimed and not yet
    acknowledged) was received; None when the queue is empty or its broker cannot
    tell (one without ``oldest_task``)."""
    from django.core.signing import BadSignature
    from django_q.signing import SignedPackage

    oldest = getattr(broker(), "oldest_task", None)
    payload = oldest() if oldest is not None else None
    if not payload:
        return None
    try:
        task = SignedPackage.loads(payload)
    except BadSignature:
        return None
    return batch_received_at(str(task.get("name", "")))
