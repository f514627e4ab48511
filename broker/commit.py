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

An unknown outcome is resolved, not guessed: each commit carries a unique id,
and a marker of it is written in the same atomic step (a row in the commit's
transaction; a key set by the commit's Lua script). When the commit's answer is
lost (a timeout, a connection cut mid-commit, a frozen store), the outcome is
asked of the store on a connection of its own (``QueueBroker.commit_outcome``),
which voids the id when its marker is not there, so the commit can no longer
land once it is answered as not taken. Landed: the request's answer is a
success; not landed: a failure (nothing taken); no answer from the store before
the request's deadline (``ingest.commit_timeout``): :class:`CommitOutcomeUnknown`
(``telemetron_commit_outcome_unknown_total``). Events with ids are safe to
retry whatever the answer: their ids were recorded with them.

With ``queue.workers = 0`` (django-q2's ``sync``) each batch is processed here,
in the request, instead of queued: in one transaction with the record of its ids
(and with the other batches of its request), so a failure leaves nothing of it.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Sequence

from django.db import transaction

from broker.interface import CommitFailed, Key, QueueBroker, queue_broker
from broker.packages import PROCESS_TASK, WireEvent, batch_package, batch_task_args
from core.config import get_config
from core.metrics.recording import commit_outcome_unknown, events_deduplicated

__all__ = ["CommitOutcomeUnknown", "broker_commit"]

log = logging.getLogger("telemetron.ingest")

Batches = list[list[WireEvent]]

# Rounds of a commit while concurrent requests keep recording ids this commit
# has too: each round drops at least one id, so this bounds nothing real.
_ROUNDS = 50


class CommitOutcomeUnknown(Exception):
    """A commit whose answer was lost and whose store did not say, before the
    deadline, whether it landed: its events may or may not be queued.
    ``ask(deadline)`` asks the store again (True, False, or None as before)."""

    def __init__(self, message: str, ask: Callable[[float], bool | None]) -> None:
        super().__init__(message)
        self.ask = ask


def broker_commit(batches: Batches, *, deadline: float | None = None) -> None:
    """Commit the batches of one request, all or none, or raise;
    :class:`CommitOutcomeUnknown` when its outcome could not be learned by
    ``deadline`` (``time.monotonic()``; default: ``ingest.commit_timeout`` from now)."""
    from django_q.conf import Conf

    if deadline is None:
        deadline = time.monotonic() + get_config().ingest.commit_timeout
    queue = queue_broker()
    keys = _event_ids(batches)
    if Conf.SYNC:
        _process_inline(queue, batches, keys)
    elif keys:
        _commit_deduplicated(queue, batches, keys, deadline=deadline)
    else:
        _commit_resolved(queue, [batch_package(events) for events in batches], deadline=deadline)


def _commit_resolved(
    queue: QueueBroker,
    tasks: list[str],
    *,
    ids: Sequence[Key] = (),
    window_s: float = 0,
    deadline: float | None,
) -> set[Key]:
    """One commit; when its answer is lost, its outcome learned from the store
    (``deadline`` None: not resolved, the error raised as it is)."""
    commit_id = uuid.uuid4().hex
    try:
        return queue.commit(
            tasks, ids=ids, window_s=window_s, commit_id=commit_id, deadline=deadline
        )
    except CommitFailed:
        raise
    except Exception as exc:
        if deadline is None:
            raise
        error = f"{type(exc).__name__}: {exc}"
        landed = queue.commit_outcome(commit_id, deadline=deadline)
        if landed:
            log.warning("commit %s: its answer was lost (%s); it landed", commit_id, error)
            return set()
        if landed is None:
            commit_outcome_unknown()
            log.error(
                "commit %s: its answer was lost (%s) and the store did not tell in time"
                " whether it landed",
                commit_id,
                error,
            )
            raise CommitOutcomeUnknown(
                f"commit {commit_id}: {error}",
                lambda until: queue.commit_outcome(commit_id, deadline=until),
            ) from exc
        log.warning("commit %s: its answer was lost (%s); it did not land", commit_id, error)
        raise


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
    *,
    deadline: float | None = None,
) -> Batches:
    """Commit the batches' events whose ids were not seen, recording their ids;
    the batches committed. ``tasks_of``: the tasks of the kept batches (their
    packages, by default); ``deadline``: see :func:`_commit_resolved`."""
    window_s = get_config().ingest.dedup_window.total_seconds()
    fresh = set(keys)
    for _ in range(_ROUNDS):
        kept, dropped = _kept(batches, fresh)
        if not kept:  # every event a repeat: nothing to add
            events_deduplicated(dropped)
            return kept
        tasks = tasks_of(kept) if tasks_of else [batch_package(events) for events in kept]
        ids = sorted(_event_ids(kept))
        seen = _commit_resolved(queue, tasks, ids=ids, window_s=window_s, deadline=deadline)
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
