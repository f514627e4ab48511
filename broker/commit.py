"""The commit of a request's batches to the queue: each batch one django-q2 task
of :func:`processing.tasks.process_batch` (:mod:`broker.packages`), several
all or none (:meth:`~broker.interface.QueueBroker.commit`: one database
transaction, or one ``MULTI``/``EXEC`` on Redis), and events with an ``id``
taken exactly once per source within ``ingest.dedup_window``.

Exactly once by id: the ids are recorded in the same atomic step as the enqueue
of their events (in the transaction of the tasks' INSERTs on the ORM broker, in
the Lua script that adds the stream entries on Redis). So a request whose answer
was lost, retried, finds its ids recorded exactly when its events are queued,
and a repeat is acknowledged (the caller's 202/200) but not queued.

With ``queue.workers = 0`` (django-q2's ``sync``) each batch is processed here,
in the request, instead of queued: in one transaction with the record of its ids
(and with the other batches of its request), so a failure leaves nothing of it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from django.db import transaction

from broker.interface import Key, QueueBroker, queue_broker
from broker.packages import PROCESS_TASK, WireEvent, batch_package, batch_task_args
from core.config import get_config
from core.metrics.recording import events_deduplicated

__all__ = ["broker_commit"]

Batches = list[list[WireEvent]]

# Rounds of a commit while concurrent requests keep recording ids this commit
# has too: each round drops at least one id, so this bounds nothing real.
_ROUNDS = 50


def broker_commit(batches: Batches) -> None:
    """Commit the batches of one request, all or none, or raise."""
    from django_q.conf import Conf

    queue = queue_broker()
    keys = _event_ids(batches)
    if Conf.SYNC:
        _process_inline(queue, batches, keys)
    elif keys:
        _commit_deduplicated(queue, batches, keys)
    else:
        queue.commit([batch_package(events) for events in batches])


def _event_ids(batches: Batches) -> set[Key]:
    return {(e["sourceId"], e["id"]) for events in batches for e in events if "id" in e}


def _kept(batches: Batches, fresh: set[Key]) -> tuple[Batches, int]:
    """The batches less the events whose id is not in ``fresh`` and the repeats
    of an id within the commit itself (the first one is kept); and how many
    were dropped."""
    taken: set[Key] = set()
    kept: Batches = []
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


def _commit_deduplicated(
    queue: QueueBroker,
    batches: Batches,
    keys: set[Key],
    tasks_of: Callable[[Batches], list[str]] | None = None,
) -> Batches:
    """Commit the batches' events whose ids were not seen, recording their ids;
    the batches committed. ``tasks_of``: the tasks of the kept batches (their
    packages, by default)."""
    window_s = get_config().ingest.dedup_window.total_seconds()
    fresh = set(keys)
    for _ in range(_ROUNDS):
        kept, dropped = _kept(batches, fresh)
        if not kept:  # every event a repeat: nothing to add
            events_deduplicated(dropped)
            return kept
        tasks = tasks_of(kept) if tasks_of else [batch_package(events) for events in kept]
        seen = queue.commit(tasks, ids=sorted(_event_ids(kept)), window_s=window_s)
        if not seen:
            events_deduplicated(dropped)
            return kept
        fresh -= seen
    raise RuntimeError("event ids kept changing under the commit; not enqueued")


def _process_inline(queue: QueueBroker, batches: Batches, keys: set[Key]) -> None:
    """``queue.workers = 0``: each batch through django-q2's ``async_task``,
    which runs it now; several batches, or batches with ids, in one transaction."""
    from django_q.tasks import async_task

    together = len(batches) > 1 or bool(keys)
    with transaction.atomic() if together else contextlib.nullcontext():
        kept = _commit_deduplicated(queue, batches, keys, lambda _: []) if keys else batches
        for events in kept:
            args = batch_task_args(events)
            async_task(PROCESS_TASK, *args, broker=queue, task_name=args[0])
