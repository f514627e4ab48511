# Long: a claim's whole life (claim, adoption, give-back, outage pause) in one base class.
"""The half of our two brokers that does not depend on the store, written once:
claims leased to a cluster (:mod:`broker.leases`), the heartbeat that renews
the lease, the housekeeping of this host's dead clusters, and the shape of a
claim (redelivered batches marked, a claim's batch tasks coalesced).

Claims belong to what can die alone. The pusher claims tasks for its cluster;
the queue worker that starts one adopts it (:meth:`LeasedBroker.adopt`, a
conditional update naming the worker process: pid and start time), and
acknowledges it itself when it is done (:mod:`broker.workers`), so the monitor
holds nothing. Every second the sentinel's heartbeat looks at the workers
holding its cluster's claims in /proc (pid and start time, so a reused pid is
not mistaken for the worker): a dead worker's tasks are handed out again at
once, a live worker's never, however long its batch takes. Claims the cluster
took but no worker adopted yet expire after ``queue.retry``, or come back at
once when the sentinel restarts its processes (:meth:`LeasedBroker.release_cluster`).
While the store is unreachable, claims, heartbeats and acknowledgements wait it
out with a bounded backoff (:mod:`core.outage`) instead of ending django-q2's
pusher, or spending a batch's attempts.

A store (:class:`~broker.orm.OrmBroker`, :class:`~broker.redis_streams.RedisStreamsBroker`)
writes the rest: its statements for a claim (``_claim``), a heartbeat
(``_renew``), the leases of this host (``_leases_of_host``, ``_mark_dead``),
the clusters' status (``_stats``) and the queue's own methods of
:class:`~broker.interface.QueueBroker` (commit, acknowledge, release, depth,
oldest task).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import Any, TypeVar

from django_q.brokers import Broker
from django_q.conf import Conf

from broker.coalesce import ack_ids, coalesce
from broker.interface import Depth
from broker.leases import (
    FULL_CLAIM_INTERVAL_S,
    Lease,
    cluster_id_of,
    host_id,
    process_alive,
    process_start,
    stat_stopped,
)
from broker.packages import mark_redelivered
from core.config import get_config
from core.memory import trim_now_and_then
from core.outage import Backoff, outage_retry, store_unavailable

__all__ = ["Claimed", "LeasedBroker"]

log = logging.getLogger("telemetron.processing")

# The cluster of this process: set by the sentinel's first heartbeat, inherited by
# the workers it forks (their brokers are built after the fork, with no cluster id).
_process_cluster: list[str] = []

_HOUSEKEEPING_S = 1.0  # this host's dead clusters looked for at most this often
_CLEANUP_S = 60.0  # the store's cleanup (_cleanup) at most this often

# A claimed task: (ack id, its package, delivered before).
Claimed = tuple[Any, str, bool]

# The share of queue.timeout an acknowledgement waits for an unreachable store
# (django-q2's monitor, which acknowledges, would otherwise die on the error and
# leave the batch claimed until queue.retry).
_ACK_WAIT_SHARE = 0.8

T = TypeVar("T")


class LeasedBroker(Broker):
    def __init__(self, list_key: str | None = None) -> None:
        super().__init__(list_key=list_key)  # type: ignore[arg-type]
        self._setup()

    def __setstate__(self, state: Any) -> None:
        super().__setstate__(state)
        self._setup()

    def _setup(self) -> None:
        cfg = get_config().queue
        # Set by the sentinel's first heartbeat; a broker used without a cluster
        # (a test, a script) is its own cluster and renews its lease itself.
        self.cluster_id: str | None = None
        self._standalone = False
        self._idle = False  # the last dequeue found nothing
        self._next_full_claim = 0.0
        self._next_housekeeping = 0.0
        self._next_cleanup = 0.0
        self._dead_after = cfg.dead_after
        self.coalesce = cfg.coalesce  # broker/coalesce.py
        self.host = host_id()  # a test may place the broker on another host
        self._outage = Backoff()  # the store unreachable: claims pause (core/outage.py)

    # --- what a store writes ------------------------------------------------------------

    def _claim(self, me: str, *, take_over: bool) -> list[Claimed]:
        """Claim up to ``Conf.BULK`` tasks for the cluster ``me`` while its lease
        is alive, in queue order; with ``take_over``, dead clusters' and expired
        claims first, else waiting tasks only."""
        raise NotImplementedError

    def _renew(self, *, stat: str, ttl: float, stopped: bool) -> None:
        """Renew this cluster's lease, carrying django-q2's ``stat`` for ``ttl`` s;
        ``stopped``: a clean stop's last heartbeat, which marks the lease dead."""
        raise NotImplementedError

    def _leases_of_host(self) -> list[Lease]:
        """The leases of the other clusters of this host not marked dead."""
        raise NotImplementedError

    def _mark_dead(self, lease: Lease) -> None:
        """Mark ``lease`` dead, if its sentinel is still the one read."""
        raise NotImplementedError

    def _stats(self) -> dict[str, str]:
        """The status of each cluster of this queue whose stat has not expired."""
        raise NotImplementedError

    def _cleanup(self) -> None:
        """What the store removes once a minute (nothing by default)."""

    def _adopt(self, ids: list[Any], owner: str, pid: int, start: int) -> int:
        """The tasks ``ids`` still claimed by the cluster ``owner`` (and held by no
        worker) now held by the worker process ``pid``/``start``; how many."""
        raise NotImplementedError

    def _disown(self, ids: list[Any], owner: str, pid: int, start: int) -> None:
        """The tasks ``ids`` held by that worker back to its cluster, to expire
        ``queue.retry`` from now (a task that failed and was not acknowledged)."""
        raise NotImplementedError

    def _holders(self) -> list[tuple[int, int]]:
        """The worker processes (pid, start) holding this cluster's tasks."""
        raise NotImplementedError

    def _release_holder(self, pid: int, start: int) -> int:
        """This cluster's tasks held by that worker given back (claimable at once,
        as redeliveries); how many."""
        raise NotImplementedError

    def _release_owner(self) -> int:
        """Every task this cluster or its workers hold given back; how many."""
        raise NotImplementedError

    def depth(self) -> Depth:
        raise NotImplementedError

    def acknowledge(self, task_id: Any) -> None:
        raise NotImplementedError

    # --- claims -------------------------------------------------------------------------

    def dequeue(self) -> list[tuple[Any, str]] | None:
        """django-q2's pusher asks for tasks: a claim (see QueueBroker.dequeue).
        The memory of the claims handed on goes back to the system now and then."""
        trim_now_and_then()
        # Dead clusters' and expired claims are looked for after an empty poll and
        # at least once a second; in between, the waiting tasks only.
        now = time.monotonic()
        full = self._idle or now >= self._next_full_claim
        try:
            claimed = self._claim(self._owner(), take_over=full)
        except Exception as exc:
            self._pause(exc)
            return None
        self._outage.succeeded()
        if full:
            self._next_full_claim = now + FULL_CLAIM_INTERVAL_S
        self._idle = not claimed
        if not claimed:
            self._wait()
            return None
        tasks = [(ack, mark_redelivered(body) if again else body) for ack, body, again in claimed]
        return coalesce(tasks) if self.coalesce else tasks

    # --- the workers' side of a claim --------------------------------------------------

    def _cluster(self) -> str:
        """The cluster this process belongs to (a worker's broker learns it from
        the sentinel it was forked from)."""
        if self.cluster_id is not None:
            return self.cluster_id
        if _process_cluster:
            return _process_cluster[-1]
        return self._owner()

    def adopt(self, task_id: Any) -> bool:
        """A queue worker starts the task (or a coalesced task's tuple of them):
        it holds the claim from now on, if its cluster still does. False when
        another cluster took some of them over meanwhile."""
        ids = ack_ids(task_id)
        pid = os.getpid()
        return self._adopt(ids, self._cluster(), pid, process_start(pid)) == len(ids)

    def disown(self, task_id: Any) -> None:
        """The worker is done with a task it does not acknowledge (it failed): the
        claim goes back to the cluster and expires ``queue.retry`` from now."""
        pid = os.getpid()
        self._disown(ack_ids(task_id), self._cluster(), pid, process_start(pid))

    def release_cluster(self) -> int:
        """Every task this cluster holds (its workers' too) handed out again at
        once: its processes were restarted, nothing of theirs still runs."""
        released = self._release_owner()
        if released:
            log.warning(
                "%s batch task(s) of cluster %s handed out again: its processes restarted",
                released,
                self.cluster_id,
                extra={"released": released},
            )
        return released

    def _release_dead_holders(self) -> None:
        """This cluster's workers that died holding tasks: the tasks come back."""
        for pid, start in self._holders():
            if not process_alive(pid, start):
                released = self._release_holder(pid, start)
                if released:
                    log.warning(
                        "queue worker %s of cluster %s is gone: its %s batch task(s) are"
                        " handed out again",
                        pid,
                        self.cluster_id,
                        released,
                        extra={"dead_worker": pid, "released": released},
                    )

    def _outage_waited(self, fn: Callable[[], T], *, doing: str) -> T:
        """``fn()``, an unreachable store waited out (backoff, core/outage.py) for
        up to ``_ACK_WAIT_SHARE`` of queue.timeout."""
        wait_s = _ACK_WAIT_SHARE * get_config().queue.timeout
        return outage_retry(fn, deadline=time.monotonic() + wait_s, doing=doing)

    def _pause(self, error: Exception) -> None:
        """A claim failed: if the store is unreachable, wait (backoff, a log line
        at the outage's start and end) and let the pusher poll again, rather
        than end the pusher (django-q2's pusher sleeps 10 s, then is replaced)."""
        store = store_unavailable(error)
        if store is None:
            raise error
        self._outage.wait(store, self._outage.failed(store, error, doing="claim"))

    def _owner(self) -> str:
        if self.cluster_id is None:
            self.cluster_id = f"standalone-{os.urandom(8).hex()}"
            self._standalone = True
        if self._standalone:
            self._heartbeat(stat="", ttl=0)
        return self.cluster_id

    def _wait(self) -> None:
        """Nothing to claim: spare the CPU until the next poll."""
        time.sleep(Conf.POLL)

    def delete(self, task_id: Any) -> None:
        self.acknowledge(task_id)

    def fail(self, task_id: Any) -> None:
        self.acknowledge(task_id)

    def queue_size(self) -> int:
        """Tasks waiting for a cluster (a claim of a dead cluster counts once taken over)."""
        return self.depth().waiting

    def lock_size(self) -> int:
        """Tasks claimed by a cluster and not acknowledged."""
        return self.depth().claimed

    # --- heartbeats ---------------------------------------------------------------------

    def set_stat(self, key: str, value: str, timeout: int) -> None:
        """The sentinel's heartbeat: renew this cluster's lease (with its status)."""
        if self.cluster_id is None:
            self.cluster_id = cluster_id_of(key)
            _process_cluster.append(self.cluster_id)
        try:
            self._heartbeat(stat=value, ttl=timeout, stopped=stat_stopped(value))
        except Exception as exc:
            store = store_unavailable(exc)
            if store is None:
                raise
            # Said once per outage (django-q2 would log each beat, twice a second);
            # the next beat tries again.
            self._outage.failed(store, exc, doing="heartbeat")
            return
        self._outage.succeeded()

    def _heartbeat(self, *, stat: str, ttl: float, stopped: bool = False) -> None:
        self._renew(stat=stat, ttl=ttl, stopped=stopped)
        now = time.monotonic()
        if now >= self._next_housekeeping:
            self._next_housekeeping = now + _HOUSEKEEPING_S
            self._mark_dead_of_this_host()
            if not self._standalone:
                self._release_dead_holders()
        if now >= self._next_cleanup:
            self._next_cleanup = now + _CLEANUP_S
            self._cleanup()

    def _mark_dead_of_this_host(self) -> None:
        """Clusters of this host whose sentinel is gone are dead: their tasks are
        claimable at once, by any cluster."""
        for lease in self._leases_of_host():
            if not process_alive(lease.pid, lease.pid_start):
                self._mark_dead(lease)
                log.warning(
                    "cluster %s of this host (sentinel pid %s) is gone: its batches are"
                    " handed out again",
                    lease.cluster_id,
                    lease.pid,
                    extra={"dead_cluster": lease.cluster_id},
                )

    def _lease_args(self) -> tuple[str, int, int]:
        """This cluster's sentinel, as its lease records it: host, pid, pid start."""
        pid = os.getpid()
        return self.host, pid, process_start(pid)

    def get_stat(self, key: str) -> str | None:
        return self._stats().get(cluster_id_of(key))

    def get_stats(self, pattern: str) -> list[str]:
        """The status of every cluster of this queue that reported in its stat's
        lifetime (3 s)."""
        return list(self._stats().values())
