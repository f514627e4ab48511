"""django-q2's cluster, guarded against the death of any one of its processes.

django-q2's sentinel forks the queue workers, the monitor and the pusher, and
replaces one that dies. They talk through two ``multiprocessing`` queues whose
locks a process can die holding: an idle worker waits for a task holding the
task queue's read lock, the monitor holds the result queue's, the pusher the
task queue's write lock while it sends. A replacement would wait for that lock
for ever, and so would the sentinel's stop (fault runs: a cluster that never
processed again, a ``serve`` whose SIGTERM hung). :class:`GuardedSentinel`:

* restarts the cluster's processes, with fresh queues, when the monitor, the
  pusher or an idle worker is killed (what the old queues held is dropped, and every
  claim of the cluster is handed out again at once:
  :meth:`broker.base.LeasedBroker.release_cluster`); a worker that dies in the
  middle of a batch is replaced alone, its claim coming back at the sentinel's
  next heartbeat (:mod:`broker.base`);
* never waits for ever on a dead worker's timer lock (a worker dies holding it
  while it hands over a result);
* makes every process of the cluster die with its parent (PR_SET_PDEATHSIG:
  the sentinel with ``qcluster``, the sentinel's children with the sentinel), so
  no process of the tree outlives ``serve``, whichever dies first.

:func:`cluster_guard` puts it in django-q2's place; :class:`ops.apps.OpsConfig`
calls it at start-up, before any cluster starts.
"""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Callable
from multiprocessing import Event
from multiprocessing.process import BaseProcess
from typing import Any

from django_q import cluster as q_cluster
from django_q.conf import Conf, logger, prometheus_multiprocess
from django_q.queues import Queue
from django_q.scheduler import scheduler
from django_q.status import Stat
from django_q.worker import worker

from broker.base import LeasedBroker
from ops.process_tree import die_with_parent

__all__ = ["GuardedSentinel", "cluster_guard"]

_TIMER_LOCK_S = 1.0  # a worker's timer lock not released in this long: its holder may be dead
_JOIN_S = 5.0  # killed processes reaped for at most this long on a restart
IDLE, RECYCLED = -1, -2  # a worker's timer values (django_q.worker)

_qcluster_pid: list[int] = []  # the process that starts sentinels (qcluster's)


def _child(target: Callable[..., Any], parent: int, *args: Any) -> None:
    """A cluster process: dies with the sentinel that forked it, then runs."""
    die_with_parent(signal.SIGKILL, parent=parent)
    target(*args)


class GuardedSentinel(q_cluster.Sentinel):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        die_with_parent(signal.SIGKILL, parent=_qcluster_pid[-1] if _qcluster_pid else None)
        super().__init__(*args, **kwargs)  # runs the cluster until it stops

    def spawn_process(self, target: Callable[..., Any], *args: Any) -> BaseProcess:
        """django-q2's, with each process dying with the sentinel."""
        p: Any = q_cluster.get_mp_context().Process(
            target=_child, args=(target, os.getpid(), *args), name=f"Process-{uuid.uuid4().hex}"
        )
        p.daemon = True
        if target == worker:
            p.daemon = Conf.DAEMONIZE_WORKERS
            p.timer = args[2]
            self.pool.append(p)
        p.start()
        return p

    def _ours(self, process: BaseProcess) -> bool:
        """A process of the cluster as it runs now (not one a restart replaced)."""
        return process in self.pool or process is self.monitor or process is self.pusher

    def _may_hold_a_queue(self, process: Any) -> str | None:
        """Why the death of ``process`` may have left a queue locked, if it may: it
        was killed (an exit of its own releases its locks, as django-q2's pusher
        does after a failed pull), and it is the monitor, the pusher or an idle
        worker (waiting for a task, it holds the task queue's read lock)."""
        if process.exitcode == 0:
            return None
        if process is self.monitor:
            return "monitor"
        if process is self.pusher:
            return "pusher"
        if process.timer.value == IDLE:
            return "worker"
        return None

    def reincarnate(self, process: Any) -> None:
        if not self._ours(process):
            return
        role = self._may_hold_a_queue(process)
        if role is None:
            super().reincarnate(process)
            return
        self.restart()
        logger.critical(
            "reincarnated %s %s after sudden death (pid %s), with the cluster's other"
            " processes, on fresh queues",
            role,
            process.name,
            process.pid,
        )

    def restart(self) -> None:
        """Kill every process of the cluster, hand its claims out again, start
        them anew on fresh queues."""
        processes = [p for p in [*self.pool, self.monitor, self.pusher] if p is not None]
        for p in processes:
            if p.is_alive():
                p.kill()
        for p in processes:
            p.join(_JOIN_S)
            if prometheus_multiprocess and os.getenv("PROMETHEUS_MULTIPROC_DIR") and p.pid:
                prometheus_multiprocess.mark_process_dead(p.pid)
        me: Any = self  # (django-q2's attributes carry no types)
        for old in (me.task_queue, me.result_queue):
            old.cancel_join_thread()
            old.close()
        if isinstance(self.broker, LeasedBroker):
            try:
                self.broker.release_cluster()
            except Exception:
                # The store is away: a dead worker's claims come back at the next
                # heartbeat's look at the workers, the rest after queue.retry.
                logger.exception("could not hand the cluster's claims out again")
        self.task_queue = Queue(maxsize=Conf.QUEUE_LIMIT) if Conf.QUEUE_LIMIT else Queue()
        self.result_queue = Queue()
        self.event_out = Event()
        self.spawn_cluster()
        self.reincarnations += 1

    def guard(self) -> None:
        """django-q2's guard loop, with a bounded wait for each worker's timer lock
        (a worker killed while it held it would stop the loop for good)."""
        self.start_event.set()
        Stat(self).save()
        logger.info("Q Cluster %s running.", q_cluster.humanize(self.cluster_id.hex))
        counter = 0.0
        cycle = Conf.GUARD_CYCLE
        while True:
            for p in list(self.pool):
                if not self._ours(p):
                    continue  # replaced by a restart in this very loop
                lock = p.timer.get_lock()
                if not lock.acquire(timeout=_TIMER_LOCK_S):
                    if not p.is_alive():  # died handing a result over, its timer locked
                        self.restart()
                        logger.critical(
                            "reincarnated worker %s after sudden death (pid %s) holding its"
                            " timer, with the cluster's other processes, on fresh queues",
                            p.name,
                            p.pid,
                        )
                    continue
                try:
                    if not p.is_alive() or p.timer.value == 0:
                        self.reincarnate(p)
                        continue
                    if p.timer.value > 0:
                        p.timer.value -= cycle
                finally:
                    lock.release()
            if not self.monitor.is_alive():
                self.reincarnate(self.monitor)
            if not self.pusher.is_alive():
                self.reincarnate(self.pusher)
            counter += cycle
            if counter >= 30 and Conf.SCHEDULER:
                counter = 0
                scheduler(broker=self.broker)
            Stat(self).save()
            if self.stop_event.wait(cycle):
                break
        self.stop()


def cluster_guard() -> None:
    """Clusters started in this process run :class:`GuardedSentinel`."""
    _qcluster_pid[:] = [os.getpid()]
    q_cluster.Sentinel = GuardedSentinel  # type: ignore[misc]
