"""A claim of the ORM broker whose answer was lost (PostgreSQL ran the
statement, then the connection was cut before its rows came back) is looked up
by its token and its tasks handed out at the next claims: else they would stay
claimed by this live cluster, handed to no worker, until ``queue.retry``. A
task of it that a queue worker holds by then stays that worker's. SQLite runs
in the process: a claim that raised was rolled back, nothing is looked up. The
Redis broker's equivalent, against a frozen Redis, is in test_commit_outcome.py."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.db import OperationalError
from django_q.conf import Conf

from broker.leases import process_start
from broker.orm import OrmBroker
from tests.broker.test_brokers import Kit, batch_task, ids
from tests.support.databases import postgres_pass_only, sqlite_pass_only
from tests.support.procs import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


class _CutOnce(OrmBroker):
    """An ORM broker whose next claim runs on the database and whose answer is
    then lost: its connection closed, the error a cut link raises (``run_cut``
    False: the claim raises without running, as a failed SQLite statement)."""

    cut_next = False
    run_cut = True

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        with super()._cursor() as cursor:
            if not self.cut_next:
                yield cursor
                return
            broker = self

            class Cut:
                def __getattr__(self, name: str) -> Any:
                    return getattr(cursor, name)

                def execute(self, sql: str, params: Any = None) -> Any:
                    claims = (
                        (broker._sql or {}).get("claim"),
                        (broker._sql or {}).get("claim_waiting"),
                    )
                    if sql not in claims:
                        return cursor.execute(sql, params)
                    broker.cut_next = False
                    if not broker.run_cut:
                        raise OperationalError("database is locked")
                    cursor.execute(sql, params)
                    cursor.fetchall()  # the statement ran to its end (committed)
                    cursor.db.close()
                    raise OperationalError("server closed the connection unexpectedly")

            yield Cut()


@pytest.fixture
def orm_kit(monkeypatch: pytest.MonkeyPatch) -> Kit:
    monkeypatch.setattr(Conf, "POLL", 0.01)
    monkeypatch.setattr(Conf, "RETRY", 3600)  # a claim left alone waits an hour
    return Kit("orm", f"test-{uuid.uuid4().hex}")


def _failed_claim(kit: Kit, *batch_ids: str, ran: bool = True) -> _CutOnce:
    """A cluster with ``batch_ids`` queued whose first claim failed: run on the
    database and its answer lost (``ran``), or raised without running."""
    b = _CutOnce(kit.queue)
    b.cluster_id = kit.cluster().cluster_id  # its lease, renewed by the kit
    kit.heartbeat(b)
    for batch_id in batch_ids:
        b.enqueue(batch_task(batch_id))
    b.cut_next, b.run_cut = True, ran
    assert b.dequeue() is None  # failed: a pause
    return b


@postgres_pass_only("an answer lost on its way back from the database")
def test_a_claim_whose_answer_was_lost_is_handed_out_at_the_next_claim(orm_kit: Kit) -> None:
    b = _failed_claim(orm_kit, "lost")
    assert b.lock_size() == 1 and b.queue_size() == 0  # claimed by this cluster
    started = time.monotonic()
    claimed = wait_until(b.dequeue, timeout=10, interval=0.05)
    assert time.monotonic() - started < 5
    assert len(ids(claimed)) == 1
    b.acknowledge(ids(claimed)[0])
    assert b.lock_size() == 0 and b.queue_size() == 0
    assert b.dequeue() is None


@postgres_pass_only("an answer lost on its way back from the database")
def test_a_lost_claims_task_held_by_a_worker_since_is_not_handed_out_again(
    orm_kit: Kit,
) -> None:
    b = _failed_claim(orm_kit, "first", "second")
    first = min(_task_ids(b))
    worker = subprocess.Popen(["sleep", "60"])
    try:
        start = wait_until(lambda: process_start(worker.pid), timeout=5, interval=0.01)
        assert b._adopt([first], str(b.cluster_id), worker.pid, start) == 1
        claimed = wait_until(b.dequeue, timeout=10, interval=0.05)
        assert ids(claimed) == [max(_task_ids(b))]  # the other one, still the cluster's
        deadline = time.monotonic() + 7  # past the lookups' window
        while time.monotonic() < deadline:
            assert b.dequeue() is None
        assert b._holders() == [(worker.pid, start)]
    finally:
        worker.kill()
        worker.wait()


@sqlite_pass_only("SQLite's claims")
def test_a_sqlite_claim_that_raised_leaves_nothing_to_look_up(orm_kit: Kit) -> None:
    b = _failed_claim(orm_kit, "waiting", ran=False)
    assert b._lost_claims.due() == []
    assert b.lock_size() == 0 and b.queue_size() == 1  # still waiting
    assert len(ids(wait_until(b.dequeue, timeout=10, interval=0.05))) == 1


def _task_ids(b: OrmBroker) -> list[int]:
    return [task.key for chunk in b.tasks_scan() for task in chunk]
