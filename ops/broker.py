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

from core.process_wide import process_wide
from plugins.base import batch_id_new, batch_received_at

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
    brokers' ``atomic()``), in turn on a broker without it. Events with an
    ``id`` are taken exactly once per source within ``ingest.dedup_window``
    (:func:`_commit_deduplicated`)."""
    queue = broker()
    keys = _event_ids(batches)
    if keys and (hasattr(queue, "seen_claim") or hasattr(queue, "enqueue_unseen")):
        _commit_deduplicated(queue, batches, keys)
        return
    if len(batches) == 1:
        _enqueue(queue, batches[0])
        return
    atomic = getattr(queue, "atomic", None)
    with atomic() if atomic is not None else contextlib.nullcontext():
        for events in batches:
            _enqueue(queue, events)


# --- exactly-once by event id -------------------------------------------------------

Key = tuple[int, str]  # (source id, event id)

# Rounds of the Redis script when concurrent requests keep recording ids this
# commit has too: each round drops at least one id, so this bounds nothing real.
_REDIS_ROUNDS = 50


def _event_ids(batches: list[list[WireEvent]]) -> set[Key]:
    return {(e["sourceId"], e["id"]) for events in batches for e in events if "id" in e}


def _kept(batches: list[list[WireEvent]], fresh: set[Key]) -> tuple[list[list[WireEvent]], int]:
    """The batches less the events whose id is not in ``fresh`` and the repeats
    of an id within the commit itself (the first one is kept); and how many
    were dropped."""
    taken: set[Key] = set()
    kept: list[list[WireEvent]] = []
    dropped = 0
    for events in batches:
        mine = []
        for event in events:
            if "id" in event:
                key = (event["sourceId"], event["id"])
                if key not in fresh or key in taken:
                    dropped += 1
                    continue
                taken.add(key)
            mine.append(event)
        if mine:
            kept.append(mine)
    return kept, dropped


def _commit_deduplicated(queue: Any, batches: list[list[WireEvent]], keys: set[Key]) -> None:
    """The ids are recorded in the same atomic step as the enqueue of their
    events: in the transaction of the tasks' INSERTs on the ORM broker, in the
    Lua script that adds the stream entries on Redis. So a request whose answer
    was lost, retried, finds its ids recorded exactly when its events are
    queued, and a repeat is acknowledged (the caller's 202/200) but not queued."""
    from core.config import get_config
    from core.metrics.recording import events_deduplicated

    window_s = get_config().ingest.dedup_window.total_seconds()
    if hasattr(queue, "seen_claim"):
        with queue.atomic():
            fresh = queue.seen_claim(sorted(keys), window_s=window_s)
            kept, dropped = _kept(batches, fresh)
            for events in kept:
                _enqueue(queue, events)
        events_deduplicated(dropped)
        queue.seen_housekeeping(window_s=window_s)  # after the commit, not in it
        return
    fresh = set(keys)
    for _ in range(_REDIS_ROUNDS):
        kept, dropped = _kept(batches, fresh)
        if not kept:  # every event a repeat: nothing to add
            events_deduplicated(dropped)
            return
        with queue.capture() as tasks:
            for events in kept:
                _enqueue(queue, events)
        taken = sorted(_event_ids(kept))
        seen = queue.enqueue_unseen(taken, tasks, window_s=window_s)
        if not seen:
            events_deduplicated(dropped)
            return
        fresh -= seen
    raise RuntimeError("event ids kept changing under the commit; not enqueued")


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
