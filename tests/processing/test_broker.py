"""The single-statement ORM broker (processing/broker.py) on the real database:
FIFO, a claimed task invisible until its lock expires then redelivered,
acknowledge deletes, and two pushers at once never claim the same task."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.db import connection
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.conf import Conf
from django_q.models import OrmQ

from processing.broker import SingleStatementORM

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def broker(monkeypatch: pytest.MonkeyPatch) -> SingleStatementORM:
    monkeypatch.setattr(Conf, "POLL", 0.01)
    b = get_broker("broker-test")
    assert isinstance(b, SingleStatementORM)  # what settings configure for the ORM broker
    return b


def test_enqueue_then_dequeue_in_order_and_acknowledge(broker: SingleStatementORM) -> None:
    ids = [broker.enqueue(f"payload-{i}") for i in range(5)]
    assert ids == sorted(ids)
    assert broker.queue_size() == 5

    claimed = broker.dequeue()
    assert claimed is not None
    assert [pk for pk, _ in claimed] == ids[: Conf.BULK]
    assert [body for _, body in claimed] == [f"payload-{i}" for i in range(len(claimed))]
    # Claimed tasks are locked: not visible to the next dequeue, counted as locked.
    assert broker.lock_size() == len(claimed)
    rest = broker.dequeue() or []
    assert not {pk for pk, _ in rest} & {pk for pk, _ in claimed}

    for pk, _ in claimed + rest:
        broker.acknowledge(pk)
    assert OrmQ.objects.filter(key="broker-test").count() == 0
    assert broker.dequeue() is None  # empty queue: None after the poll sleep


def test_a_claimed_task_whose_lock_expired_is_redelivered(broker: SingleStatementORM) -> None:
    pk = broker.enqueue("died-with-its-worker")
    assert [p for p, _ in broker.dequeue() or []] == [pk]
    assert broker.dequeue() is None
    # The worker died: the lock (now + retry) expires.
    OrmQ.objects.filter(pk=pk).update(lock=timezone.now() - timezone.timedelta(seconds=1))
    assert broker.dequeue() == [(pk, "died-with-its-worker")]


def test_other_queues_are_left_alone(broker: SingleStatementORM) -> None:
    other = get_broker("another-queue")
    mine = broker.enqueue("mine")
    theirs = other.enqueue("theirs")
    assert broker.dequeue() == [(mine, "mine")]
    assert other.dequeue() == [(theirs, "theirs")]


def test_two_pushers_never_claim_the_same_task(broker: SingleStatementORM) -> None:
    total = 200
    for i in range(total):
        broker.enqueue(f"t{i}")
    claimed_by: list[list[int]] = [[], []]
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def pusher(claims: list[int]) -> None:
        mine = get_broker("broker-test")
        try:
            start.wait(timeout=30)
            while (batch := mine.dequeue()) is not None:
                claims.extend(pk for pk, _ in batch)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=pusher, args=(c,)) for c in claimed_by]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    claims = Counter(claimed_by[0] + claimed_by[1])
    assert len(claims) == total
    assert set(claims.values()) == {1}
