"""The ORM broker (broker/orm.py) beyond the contract both brokers keep
(tests/processing/test_brokers.py): it is what the settings select, it leaves
other queues alone, and a broker used outside a cluster renews its own lease."""

from __future__ import annotations

import pytest
from django_q.brokers import get_broker
from django_q.conf import Conf

from broker.models import ClusterLease, QueuedTask
from broker.orm import OrmBroker

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fast_poll(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Conf, "POLL", 0.01)


def test_the_settings_select_it() -> None:
    assert isinstance(get_broker("broker-test"), OrmBroker)


def test_other_queues_are_left_alone() -> None:
    mine, other = OrmBroker("broker-test"), OrmBroker("another-queue")
    first = mine.enqueue("mine")
    theirs = other.enqueue("theirs")
    assert mine.dequeue() == [(first, "mine")]
    assert other.dequeue() == [(theirs, "theirs")]
    assert QueuedTask.objects.get(pk=first).owner == mine.cluster_id


def test_a_broker_outside_a_cluster_is_its_own_cluster() -> None:
    """No sentinel tells it its cluster id: it makes one, and renews its lease on
    each dequeue (a script or a test draining the queue)."""
    b = OrmBroker("broker-test")
    b.enqueue("task")
    assert b.dequeue() == [(QueuedTask.objects.get().pk, "task")]
    assert b.cluster_id is not None and b.cluster_id.startswith("standalone-")
    lease = ClusterLease.objects.get(cluster_id=b.cluster_id)
    assert lease.stat == "" and not lease.dead
    assert b.get_stats("*") == []  # no cluster status to report
