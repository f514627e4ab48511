"""The contract of both of our brokers (broker/interface.py), on the real
database and the real Redis (broker/orm.py, broker/redis_streams.py,
broker/base.py, broker/leases.py): FIFO and acknowledgement, queue depth,
all-or-none commits, a released task claimed again, a task stays with
a live cluster however slow, is taken over at once when its cluster of this host
crashed and after ``queue.dead_after`` when its cluster of another host went
silent, never by a cluster that is itself just back from an outage, and two
clusters never claim one task."""

from __future__ import annotations

import json
import logging
import subprocess
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from django.db import connection
from django_q.conf import Conf
from django_q.signing import SignedPackage
from django_q.status import Status

from broker.interface import Depth
from broker.orm import OrmBroker
from broker.packages import PROCESS_TASK
from broker.redis_streams import RedisStreamsBroker
from core.config import get_config
from tests.support.procs import wait_until

pytestmark = pytest.mark.django_db(transaction=True)

REDIS_URL = "redis://127.0.0.1:6379/0"
DEAD_AFTER = get_config().queue.dead_after
AnyBroker = OrmBroker | RedisStreamsBroker


class Kit:
    """Brokers of one queue, each its own cluster, and the hands to age their
    leases (as the clock would) without waiting."""

    def __init__(self, kind: str, queue: str) -> None:
        self.kind, self.queue = kind, queue
        self.made: list[AnyBroker] = []

    def cluster(self, *, host: str | None = None) -> AnyBroker:
        b: AnyBroker = (
            OrmBroker(self.queue) if self.kind == "orm" else RedisStreamsBroker(self.queue)
        )
        if host is not None:
            b.host = host
        b.cluster_id = f"cluster-{uuid.uuid4().hex[:8]}"
        self.heartbeat(b)
        self.made.append(b)
        return b

    def heartbeat(self, b: AnyBroker, *, housekeeping: bool = False) -> None:
        if housekeeping:
            b._next_housekeeping = 0.0
        b.set_stat(f"{Conf.Q_STAT}:{b.cluster_id}", f"status of {b.cluster_id}", 3)

    def shift(self, b: AnyBroker, *, heartbeat_by: float = 0, fresh_by: float = 0) -> None:
        """Make ``b``'s last heartbeat, and the start of its regular heartbeats,
        that many seconds older."""
        self._edit(
            b,
            lambda lease: (
                lease
                | {
                    "heartbeat": lease["heartbeat"] - heartbeat_by,
                    "fresh_since": lease["fresh_since"] - fresh_by,
                }
            ),
        )

    def sentinel_gone(self, b: AnyBroker) -> None:
        """``b``'s sentinel process is no longer running (a finished process's pid)."""
        finished = subprocess.Popen(["true"])
        finished.wait()
        self._edit(b, lambda lease: lease | {"pid": finished.pid, "pid_start": 1})

    def _edit(self, b: AnyBroker, change: Any) -> None:
        if isinstance(b, OrmBroker):
            with connection.cursor() as cur:
                cur.execute(
                    "SELECT heartbeat, fresh_since, pid, pid_start FROM processing_clusterlease"
                    " WHERE cluster_id = %s",
                    [b.cluster_id],
                )
                row = dict(
                    zip(
                        ("heartbeat", "fresh_since", "pid", "pid_start"),
                        cur.fetchone(),
                        strict=True,
                    )
                )
                new = change(row)
                cur.execute(
                    "UPDATE processing_clusterlease SET heartbeat = %s, fresh_since = %s,"
                    " pid = %s, pid_start = %s WHERE cluster_id = %s",
                    [
                        new["heartbeat"],
                        new["fresh_since"],
                        new["pid"],
                        new["pid_start"],
                        b.cluster_id,
                    ],
                )
            return
        lease = json.loads(b.connection.hget(b.leases, b.cluster_id))
        row = {
            "heartbeat": lease["hb"],
            "fresh_since": lease["fresh"],
            "pid": lease["pid"],
            "pid_start": lease["start"],
        }
        new = change(row)
        lease.update(
            hb=new["heartbeat"], fresh=new["fresh_since"], pid=new["pid"], start=new["pid_start"]
        )
        b.connection.hset(b.leases, b.cluster_id, json.dumps(lease))


@pytest.fixture(params=["orm", "redis"])
def kit(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Kit]:
    monkeypatch.setattr(Conf, "POLL", 0.01)
    monkeypatch.setattr(Conf, "REDIS", REDIS_URL)
    made = Kit(request.param, f"test-{uuid.uuid4().hex}")
    try:
        yield made
    finally:
        if request.param == "redis":
            client = redis.from_url(REDIS_URL)
            client.delete(f"django_q:{made.queue}:stream", f"django_q:{made.queue}:leases")
            for key in client.scan_iter(f"django_q:{made.queue}:seen:*"):
                client.delete(key)


def batch_task(batch_id: str) -> str:
    """A signed django-q2 package of a batch task, as ingest enqueues one."""
    return str(
        SignedPackage.dumps(
            {
                "func": PROCESS_TASK,
                "args": (batch_id, "[]", 0.0),
                "kwargs": {},
                "id": batch_id,
                "name": batch_id,
            }
        )
    )


def kwargs_of(payload: str) -> dict[str, Any]:
    return dict(SignedPackage.loads(payload)["kwargs"])


def ids(tasks: list[tuple[Any, str]] | None) -> list[Any]:
    return [task_id for task_id, _ in tasks or []]


def test_fifo_acknowledgement_and_queue_depth(kit: Kit) -> None:
    a = kit.cluster()
    for i in range(5):
        a.enqueue(f"payload-{i}")
    assert (a.queue_size(), a.lock_size()) == (5, 0)
    got = a.dequeue()
    assert [body for _, body in got or []] == [f"payload-{i}" for i in range(5)]
    assert (a.queue_size(), a.lock_size()) == (0, 5)  # claimed, not waiting
    for task_id in ids(got)[:3]:
        a.acknowledge(task_id)
    assert (a.queue_size(), a.lock_size()) == (0, 2)
    for task_id in ids(got)[3:]:
        a.acknowledge(task_id)
    assert (a.queue_size(), a.lock_size()) == (0, 0)
    assert a.dequeue() is None


def test_a_commit_is_all_or_none_with_the_record_of_its_ids(kit: Kit) -> None:
    a = kit.cluster()
    assert a.commit(["t0"], ids=[(1, "x")], window_s=60) == set()
    # x was taken: nothing of this commit is added, y is not recorded either.
    assert a.commit(["t1", "t2"], ids=[(1, "y"), (1, "x")], window_s=60) == {(1, "x")}
    assert a.depth() == Depth(waiting=1, claimed=0)
    assert a.commit(["t1", "t2"], ids=[(1, "y"), (2, "x")], window_s=60) == set()
    assert a.commit(["t3", "t4", "t5"]) == set()
    assert a.depth() == Depth(waiting=6, claimed=0)
    assert [body for _, body in a.dequeue() or []] == ["t0", "t1", "t2", "t3", "t4", "t5"]


def test_a_released_task_is_claimed_again_as_a_redelivery(kit: Kit) -> None:
    a, b = kit.cluster(), kit.cluster()
    for batch_id in ("b1", "b2"):
        a.enqueue(batch_task(batch_id))
    first, _ = ids(a.dequeue())
    a.release(first)  # (counted as claimed on Redis until taken: its entry stays pending)
    again = wait_until(lambda: b.dequeue(), timeout=10, interval=0.05)
    assert ids(again) == [first]
    assert kwargs_of(again[0][1]) == {"redelivered": True}
    assert a.depth() == Depth(waiting=0, claimed=2)


def test_a_live_cluster_keeps_its_tasks_however_slow(kit: Kit) -> None:
    slow = kit.cluster(host="another-host")
    other = kit.cluster()
    kit.shift(other, fresh_by=60)  # up for a minute: it may take over stale leases
    slow.enqueue(batch_task("b1"))
    assert len(ids(slow.dequeue())) == 1
    for _ in range(5):
        kit.heartbeat(slow)  # still working on it
        assert other.dequeue() is None
    kit.shift(slow, heartbeat_by=DEAD_AFTER - 1.5)  # a late heartbeat, not a dead one
    assert other.dequeue() is None


def test_a_silent_cluster_of_another_host_loses_its_tasks_after_dead_after(kit: Kit) -> None:
    gone = kit.cluster(host="another-host")
    taker = kit.cluster()
    kit.shift(taker, fresh_by=60)
    for batch_id in ("b1", "b2"):
        gone.enqueue(batch_task(batch_id))
    claimed = ids(gone.dequeue())
    assert len(claimed) == 2 and taker.dequeue() is None
    kit.shift(gone, heartbeat_by=DEAD_AFTER + 1)  # no heartbeat for longer than dead_after
    again = taker.dequeue() or []
    assert ids(again) == claimed
    assert all(kwargs_of(body) == {"redelivered": True} for _, body in again)
    for task_id in claimed:
        taker.acknowledge(task_id)
    assert (taker.queue_size(), taker.lock_size()) == (0, 0)


def test_nobody_takes_over_before_the_live_clusters_could_renew_after_an_outage(kit: Kit) -> None:
    owner = kit.cluster(host="another-host")
    other = kit.cluster()
    owner.enqueue(batch_task("b1"))
    assert ids(owner.dequeue())
    # The database (or Redis) was down for a minute: nobody could renew.
    kit.shift(owner, heartbeat_by=60, fresh_by=60)
    kit.shift(other, heartbeat_by=60, fresh_by=60)
    kit.heartbeat(other)  # back first: its heartbeats are regular since now only
    assert other.dequeue() is None
    kit.heartbeat(owner)  # the owner was alive all along
    kit.shift(other, fresh_by=60)
    assert other.dequeue() is None


def test_a_crashed_cluster_of_this_host_loses_its_tasks_at_once(kit: Kit) -> None:
    crashed = kit.cluster()
    restarted = kit.cluster()  # just started, on the same host
    crashed.enqueue(batch_task("b1"))
    claimed = ids(crashed.dequeue())
    assert restarted.dequeue() is None
    kit.sentinel_gone(crashed)
    kit.heartbeat(restarted, housekeeping=True)  # its sentinel looks at this host's leases
    again = restarted.dequeue() or []
    assert ids(again) == claimed
    assert kwargs_of(again[0][1]) == {"redelivered": True}


def test_a_cluster_that_stopped_cleanly_is_not_taken_for_a_crash(
    kit: Kit, caplog: pytest.LogCaptureFixture
) -> None:
    """The sentinel's last heartbeat of a clean stop (status Stopped) gives the
    lease up: what it still held goes at once, and the next cluster of this host
    does not report it gone."""
    stopped = kit.cluster()
    stopped.enqueue(batch_task("b1"))
    claimed = ids(stopped.dequeue())
    last = SignedPackage.dumps(Status(pid=1, cluster_id=stopped.cluster_id), True)
    assert Status(pid=1, cluster_id="x").status == Conf.STOPPED
    stopped.set_stat(f"{Conf.Q_STAT}:{stopped.cluster_id}", last, 3)
    kit.sentinel_gone(stopped)
    started = kit.cluster()  # the next start on this host
    with caplog.at_level(logging.WARNING, logger="telemetron.processing"):
        kit.heartbeat(started, housekeeping=True)
    assert "is gone" not in caplog.text
    assert ids(started.dequeue()) == claimed
    assert stopped.dequeue() is None  # its lease is given up: it claims nothing more


def test_heartbeats_of_a_running_or_stopping_cluster_keep_the_lease(kit: Kit) -> None:
    working = kit.cluster()
    for status in (Conf.IDLE, Conf.WORKING, Conf.STOPPING):
        stat = Status(pid=1, cluster_id=working.cluster_id)
        stat.status = status
        working.set_stat(f"{Conf.Q_STAT}:{working.cluster_id}", SignedPackage.dumps(stat, True), 3)
        working.enqueue(f"t-{status}")
        assert ids(working.dequeue()), status


def test_a_claim_past_queue_retry_is_delivered_again(
    kit: Kit, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker died inside a cluster that lives on: its task comes back after
    queue.retry (here 1 s), to any cluster."""
    monkeypatch.setattr(Conf, "RETRY", 1)
    a, b = kit.cluster(), kit.cluster()
    a.enqueue(batch_task("b1"))
    claimed = ids(a.dequeue())
    again = wait_until(lambda: b.dequeue(), timeout=30, interval=0.05)
    assert ids(again) == claimed
    assert kwargs_of(again[0][1]) == {"redelivered": True}


def test_a_cluster_whose_own_lease_lapsed_claims_nothing(kit: Kit) -> None:
    a = kit.cluster()
    a.enqueue("waiting")
    kit.shift(a, heartbeat_by=DEAD_AFTER + 1)  # its sentinel stopped renewing
    assert a.dequeue() is None
    kit.heartbeat(a)
    assert [body for _, body in a.dequeue() or []] == ["waiting"]


def test_first_deliveries_are_passed_as_they_are(kit: Kit) -> None:
    a = kit.cluster()
    a.enqueue(batch_task("b1"))
    assert kwargs_of((a.dequeue() or [])[0][1]) == {}


def test_heartbeats_carry_the_clusters_status(kit: Kit) -> None:
    a, b = kit.cluster(), kit.cluster()
    assert sorted(a.get_stats(f"{Conf.Q_STAT}:*")) == sorted(
        f"status of {c.cluster_id}" for c in (a, b)
    )
    assert b.get_stat(f"{Conf.Q_STAT}:{a.cluster_id}") == f"status of {a.cluster_id}"


def test_two_clusters_never_claim_the_same_task(kit: Kit) -> None:
    total = 200
    seed = kit.cluster()
    for i in range(total):
        seed.enqueue(f"t{i}")
    pushers = [kit.cluster(), kit.cluster()]
    claimed_by: list[list[Any]] = [[], []]
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def pusher(mine: AnyBroker, claims: list[Any]) -> None:
        try:
            start.wait(timeout=30)
            while (batch := mine.dequeue()) is not None:
                claims.extend(ids(batch))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=pusher, args=(p, c))
        for p, c in zip(pushers, claimed_by, strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    claims = Counter(claimed_by[0] + claimed_by[1])
    assert len(claims) == total
    assert set(claims.values()) == {1}


def test_the_oldest_task_is_the_first_not_yet_acknowledged(kit: Kit) -> None:
    a = kit.cluster()
    assert a.oldest_task() is None
    for name in ("first", "second", "third"):
        a.enqueue(batch_task(name))
    got = a.dequeue()  # claimed, not acknowledged: still the oldest
    assert SignedPackage.loads(a.oldest_task())["name"] == "first"
    a.acknowledge(ids(got)[0])
    assert SignedPackage.loads(a.oldest_task())["name"] == "second"
    for task_id in ids(got)[1:]:
        a.acknowledge(task_id)
    assert a.oldest_task() is None
