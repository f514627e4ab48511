"""The commit of batches to the broker (broker/commit.py) on the real database."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.db import DatabaseError
from django_q.conf import Conf

from broker.commit import broker_commit
from broker.interface import CommitFailed, queue_broker
from broker.models import QueuedTask
from broker.orm import OrmBroker
from broker.selectors import oldest_batch_received_at

pytestmark = pytest.mark.django_db(transaction=True)


def test_broker_commit_writes_several_batches_all_or_none(monkeypatch: pytest.MonkeyPatch) -> None:
    """A request over batch_size events is several tasks: one transaction, so a
    failure part-way leaves none of them (its 503 is exact)."""

    class FailsOnSecondTask(OrmBroker):
        calls = 0

        def enqueue(self, task: str) -> int:
            FailsOnSecondTask.calls += 1
            if FailsOnSecondTask.calls == 2:
                raise DatabaseError("disk full")
            return super().enqueue(task)

    monkeypatch.setattr(Conf, "SYNC", False)  # really enqueue (tests run inline otherwise)
    wire = {"sourceId": 1, "type": "Click", "timestamp": "2026-11-26T10:00:00Z", "data": None}
    batches = [[wire], [wire], [wire]]
    with (
        queue_broker.override(FailsOnSecondTask(list_key="all-or-none")),
        pytest.raises(CommitFailed),  # failed before its COMMIT: certainly not landed
    ):
        broker_commit(batches)
    assert QueuedTask.objects.filter(queue="all-or-none").count() == 0

    with queue_broker.override(OrmBroker(list_key="all-or-none")):
        broker_commit(batches)
    assert QueuedTask.objects.filter(queue="all-or-none").count() == 3


def test_the_oldest_batch_received_is_read_from_its_id(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Conf, "SYNC", False)  # really enqueue
    queue_broker().purge_queue()
    assert oldest_batch_received_at() is None
    before = datetime.now(UTC)
    broker_commit([[{"sourceId": 1, "type": "A", "timestamp": "2023-10-27T09:30:00Z"}]])
    broker_commit([[{"sourceId": 2, "type": "A", "timestamp": "2023-10-27T09:30:00Z"}]])
    received = oldest_batch_received_at()
    assert received is not None
    assert before - timedelta(milliseconds=1) <= received <= datetime.now(UTC)
    queue_broker().purge_queue()


def test_a_committed_task_is_the_package_django_q2_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """What broker_commit writes (without async_task) is a signed django-q2 task
    of process_batch whose events read back as they were sent."""
    from django_q.signing import SignedPackage

    monkeypatch.setattr(Conf, "SYNC", False)
    events = [
        {"sourceId": 2**64 - 1, "type": "Click", "timestamp": "2026-11-26T10:00:00Z", "data": None},
        {"sourceId": 1, "type": "é", "timestamp": "2026-11-26T10:00:00.5Z", "data": {"x": [1.5]}},
        {"sourceId": 1, "type": "Big", "timestamp": "2026-11-26T10:00:00Z", "data": float("inf")},
    ]
    with queue_broker.override(OrmBroker(list_key="package")):
        broker_commit([events])
    task = SignedPackage.loads(QueuedTask.objects.get(queue="package").payload)
    assert task["func"] == "processing.tasks.process_batch"
    batch_id, payload, enqueued_at = task["args"]
    assert task["name"] == batch_id and len(task["id"]) == 32
    assert task["kwargs"] == {} and task["started"] is not None
    assert json.loads(payload) == events  # Infinity written as json.dumps writes it
    assert enqueued_at == pytest.approx(time.time(), abs=60)
