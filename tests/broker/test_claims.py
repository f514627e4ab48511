"""Claims belong to what can die alone (broker/base.py, broker/workers.py), on
both brokers against the real database and Redis: the queue worker that starts
a task holds its claim, a live worker keeps it past ``queue.retry`` however slow,
a dead worker's comes back at the next housekeeping of its sentinel (pid and
start time: a reused pid is not the worker), a claim taken over meanwhile is not
adopted, a failed task goes back to its cluster's claim, and a cluster that
restarts its processes gives every claim back at once."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator

import pytest
from django_q.conf import Conf

from broker.interface import queue_broker
from broker.leases import process_start
from broker.workers import task_finished, task_started
from tests.broker.test_brokers import Kit, batch_task, ids, kit, kwargs_of
from tests.support.procs import wait_until

__all__ = ["kit"]  # the fixture, parametrized over both brokers

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def worker() -> Iterator[subprocess.Popen[bytes]]:
    """A process standing for a queue worker of this host."""
    proc = subprocess.Popen(["sleep", "60"])
    wait_until(lambda: process_start(proc.pid), timeout=5, interval=0.01)
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def _adopt(kit: Kit, b: object, task_id: object, proc: subprocess.Popen[bytes]) -> int:
    assert hasattr(b, "_adopt")
    return int(b._adopt([task_id], b.cluster_id, proc.pid, process_start(proc.pid)))


def test_a_live_workers_claim_outlasts_queue_retry(
    kit: Kit, worker: subprocess.Popen[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Conf, "RETRY", 1)
    a, b = kit.cluster(), kit.cluster()
    a.enqueue(batch_task("slow"))
    (task_id,) = ids(a.dequeue())
    assert _adopt(kit, a, task_id, worker) == 1
    deadline = time.monotonic() + 2.5  # past queue.retry (1 s), the worker alive
    while time.monotonic() < deadline:
        kit.heartbeat(a, housekeeping=True)
        assert b.dequeue() is None
        assert a.dequeue() is None
    assert a.lock_size() == 1 and a.queue_size() == 0


def test_a_dead_workers_claim_comes_back_at_once(
    kit: Kit, worker: subprocess.Popen[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Conf, "RETRY", 3600)
    a = kit.cluster()
    for batch_id in ("b1", "b2"):
        a.enqueue(batch_task(batch_id))
    first, _ = ids(a.dequeue())
    assert _adopt(kit, a, first, worker) == 1
    worker.kill()
    worker.wait()
    kit.heartbeat(a, housekeeping=True)  # the sentinel looks at its workers
    # (a pusher looks beyond the waiting tasks at least once a second)
    again = wait_until(lambda: a.dequeue(), timeout=3, interval=0.05)
    assert ids(again) == [first]  # the other claim is still the cluster's
    assert kwargs_of(again[0][1]) == {"redelivered": True}
    assert a.lock_size() == 2


def test_a_reused_pid_is_not_the_worker(kit: Kit, worker: subprocess.Popen[bytes]) -> None:
    a = kit.cluster()
    a.enqueue(batch_task("b1"))
    (task_id,) = ids(a.dequeue())
    # Held by "the same pid started earlier": a process that is gone.
    assert a._adopt([task_id], a.cluster_id, worker.pid, process_start(worker.pid) - 1) == 1
    kit.heartbeat(a, housekeeping=True)
    assert ids(wait_until(lambda: a.dequeue(), timeout=3, interval=0.05)) == [task_id]


def test_a_claim_taken_over_meanwhile_is_not_adopted(
    kit: Kit, worker: subprocess.Popen[bytes]
) -> None:
    crashed, taker = kit.cluster(), kit.cluster()
    crashed.enqueue(batch_task("b1"))
    (task_id,) = ids(crashed.dequeue())
    kit.sentinel_gone(crashed)
    kit.heartbeat(taker, housekeeping=True)
    assert ids(taker.dequeue()) == [task_id]
    assert _adopt(kit, crashed, task_id, worker) == 0  # the taker's now
    assert _adopt(kit, taker, task_id, worker) == 1


def test_the_worker_acknowledges_what_it_ran_and_gives_back_what_failed(
    kit: Kit, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The signal handlers as django-q2's worker calls them, in this process."""
    monkeypatch.setattr(Conf, "RETRY", 1)
    a = kit.cluster()
    a.enqueue(batch_task("ok"))
    a.enqueue(batch_task("fails"))
    ok, fails = ids(a.dequeue())
    with queue_broker.override(a):
        done = {"ack_id": ok, "name": "ok"}
        task_started(None, task=done)
        assert a.dequeue() is None
        done["success"] = True
        task_finished(None, task=done)
        assert "ack_id" not in done  # nothing left for the monitor to acknowledge
        failed = {"ack_id": fails, "name": "fails"}
        task_started(None, task=failed)
        failed["success"] = False
        task_finished(None, task=failed)
        assert failed["ack_id"] == fails
    assert a.lock_size() == 1  # the failed one, back with the cluster: retried after 1 s
    again = wait_until(lambda: a.dequeue(), timeout=10, interval=0.05)
    assert ids(again) == [fails]


def test_a_cluster_restarting_its_processes_gives_every_claim_back(
    kit: Kit, worker: subprocess.Popen[bytes]
) -> None:
    a, b = kit.cluster(), kit.cluster()
    for batch_id in ("b1", "b2", "b3"):
        a.enqueue(batch_task(batch_id))
    claimed = ids(a.dequeue())
    assert _adopt(kit, a, claimed[0], worker) == 1
    assert a.release_cluster() == 3
    again = b.dequeue() or []
    assert sorted(ids(again)) == sorted(claimed)
    assert all(kwargs_of(body) == {"redelivered": True} for _, body in again)
