"""The queue as Telemetron sees it: one declared interface, :class:`QueueBroker`,
which both of our brokers (:mod:`broker.orm`, :mod:`broker.redis_streams`)
implement, and the process's broker, built once.

django-q2's ``Broker`` base class is what its cluster calls (the pusher's
``dequeue``, the workers' ``acknowledge``, the sentinel's ``set_stat``);
:class:`QueueBroker` adds what ingest, /readyz, /metrics and the console need:

* ``commit``: a request's batches added all or none, with the record of their
  event ids (exactly once by id) in the same atomic step;
* ``dequeue`` (django-q2's name for a claim): tasks leased to this broker's
  cluster, handed out again when the lease lapses (:mod:`broker.leases`);
* ``acknowledge`` and ``release``: a claimed task done, or given back;
* ``depth`` and ``oldest_task``: what waits, what is claimed, since when;
* ``tasks_scan`` and ``task_replace``: every stored task read, and a waiting
  one's package replaced or removed (an erasure, :mod:`broker.erasure`).

Which class the process uses is ``Q_CLUSTER["broker_class"]`` (the settings),
the way django-q2 builds its own brokers.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from django.core.exceptions import ImproperlyConfigured

from core.config import get_config
from core.process_wide import process_wide

__all__ = ["CommitFailed", "Depth", "Key", "QueueBroker", "StoredTask", "queue_broker"]

Key = tuple[int, str]  # an event id of a source: (source id, event id)


class CommitFailed(Exception):
    """A commit that certainly did not land (no connection to its store, or an
    error before its final step was sent): no outcome to resolve."""


@dataclass(frozen=True)
class Depth:
    """Tasks in the broker: ``waiting`` for a cluster, ``claimed`` by one and
    not yet acknowledged (a claim of a dead cluster counts as waiting once it is
    taken over)."""

    waiting: int
    claimed: int


@dataclass(frozen=True)
class StoredTask:
    """A task as the broker stores it: its key in the store (a row id, a stream
    entry id), its package, and whether a cluster holds it (claimed, or released
    and awaiting redelivery)."""

    key: Any
    payload: str
    claimed: bool


@runtime_checkable
class QueueBroker(Protocol):
    """What Telemetron needs of a queue broker beyond django-q2's ``Broker``."""

    list_key: str

    def commit(
        self,
        tasks: Sequence[str],
        *,
        ids: Sequence[Key] = (),
        window_s: float = 0,
        commit_id: str = "",
        deadline: float | None = None,
    ) -> set[Key]:
        """Add ``tasks`` (signed django-q2 packages) all or none, and record the
        event ids ``ids`` in the same atomic step, unless one of them was
        recorded within ``window_s`` seconds: then add and record nothing and
        return the ids found (the caller drops their events and commits again).
        Returns an empty set when the tasks were added.

        ``commit_id`` (unique per commit): a marker of it is written in the same
        atomic step, and a commit whose id was voided by :meth:`commit_outcome`
        adds nothing (raises). ``deadline`` (``time.monotonic()``): how long its
        answer may be waited for, less a moment left to resolve it. Raises
        :class:`CommitFailed` when it certainly did not land; any other error
        leaves the outcome to :meth:`commit_outcome`."""
        ...

    def commit_outcome(self, commit_id: str, *, deadline: float) -> bool | None:
        """Whether the commit ``commit_id``, whose answer was lost, landed: True
        (its marker is there), False (it did not, and now never will: its id is
        voided), None when the store did not answer before ``deadline``
        (``time.monotonic()``). Asked on a connection of its own."""
        ...

    def dequeue(self) -> list[tuple[Any, str]] | None:
        """Claim up to ``queue.bulk`` tasks for this broker's cluster, leased to
        it while its heartbeats go on: ``(ack id, package)`` in queue order, a
        redelivered batch task marked so; None (after ``queue.poll``) when
        there is nothing to claim."""
        ...

    def acknowledge(self, task_id: Any) -> None:
        """The task (or a coalesced task's tuple of them) is done: remove it."""
        ...

    def release(self, task_id: Any) -> None:
        """Give a claimed task (or a coalesced tuple) back, claimable by any
        cluster within a second, as a redelivery."""
        ...

    def depth(self) -> Depth:
        """Tasks waiting and claimed, read together."""
        ...

    def oldest_task(self) -> str | None:
        """The package of the oldest task not yet acknowledged (waiting or claimed)."""
        ...

    def tasks_scan(self, *, chunk: int = 100) -> Iterator[list[StoredTask]]:
        """Every task stored when the scan starts, oldest first, ``chunk`` at a time."""
        ...

    def task_replace(self, key: Any, payload: str | None) -> bool:
        """Replace a waiting task's package (None: remove the task). False, and
        nothing changed, when it is gone or a cluster holds it. A Redis entry is
        added again at the stream's end (entries cannot change in place)."""
        ...

    def get_stats(self, pattern: str) -> list[str] | None:
        """django-q2's status of every cluster whose heartbeat is alive."""
        ...

    def info(self) -> str:
        """One line naming the broker and its store, for /readyz."""
        ...

    def bound_timeouts(self, seconds: float) -> None:
        """Bound each round trip to the store to ``seconds`` (connect, send,
        answer), without retries: the request path's broker. The cluster's own
        broker keeps waiting for its store."""
        ...


@process_wide
def queue_broker() -> QueueBroker:
    """The process's broker (building one costs ~100 µs; ingest, backpressure,
    /readyz, /metrics and the console all use it)."""
    from django_q.brokers import get_broker

    made = get_broker()
    if not isinstance(made, QueueBroker):
        raise ImproperlyConfigured(
            f"Q_CLUSTER['broker_class'] is {type(made).__module__}.{type(made).__name__},"
            " which is not a Telemetron broker (broker.orm.OrmBroker or"
            " broker.redis_streams.RedisStreamsBroker)"
        )
    made.bound_timeouts(get_config().ingest.store_timeout)
    return made
