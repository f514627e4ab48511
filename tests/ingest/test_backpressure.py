"""Backpressure on the queue's backlog (ingest/backpressure.py): the gate reads
the backlog at most once per interval and answers 503 + Retry-After at or over
the limit; the ingest API refuses there and takes nothing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.test import Client

from broker.interface import queue_broker
from broker.models import QueuedTask
from core.errors import ServiceUnavailable
from ingest.backpressure import QueueGate, queue_gate
from tests.conftest import event
from tests.support.client import post, stats


class Depth:
    def __init__(self, value: int) -> None:
        self.value, self.reads = value, 0

    def __call__(self) -> int:
        self.reads += 1
        if self.value < 0:
            raise ConnectionError("broker down")
        return self.value


def test_gate_refuses_at_the_limit_with_retry_after() -> None:
    depth = Depth(5)
    gate = QueueGate(limit=5, depth=depth, retry_after=4, interval_s=0)
    with pytest.raises(ServiceUnavailable) as info:
        gate.check()
    assert info.value.retry_after == 4
    assert info.value.message == (
        "Queue backlog of 5 batches is at its limit of 5 (workers down or behind); retry later"
    )
    depth.value = 4
    gate.check()  # under the limit again: let through


def test_gate_reads_the_backlog_once_per_interval() -> None:
    depth = Depth(0)
    gate = QueueGate(limit=5, depth=depth, retry_after=1, interval_s=3600)
    for _ in range(100):
        gate.check()
    assert depth.reads == 1


def test_a_failed_read_keeps_the_last_value() -> None:
    depth = Depth(7)
    gate = QueueGate(limit=5, depth=depth, retry_after=1, interval_s=0)
    with pytest.raises(ServiceUnavailable):
        gate.check()
    depth.value = -1  # the read fails: still over, as last seen
    with pytest.raises(ServiceUnavailable):
        gate.check()
    assert depth.reads == 2


@pytest.fixture
def gated() -> Iterator[None]:
    """The process's gate on the real broker table, limit 3, read every time."""
    depth = lambda: int(queue_broker().queue_size())  # noqa: E731
    with queue_gate.override(QueueGate(limit=3, depth=depth, retry_after=2, interval_s=0)):
        yield


@pytest.mark.django_db
@pytest.mark.usefixtures("gated")
def test_ingest_answers_503_while_the_backlog_is_full_and_takes_nothing(client: Client) -> None:
    assert post(client, "/ingest", event(1)).status_code == 202  # inline: no backlog
    queued = [queue_broker().enqueue(f"waiting-{i}") for i in range(3)]  # workers down: 3 waiting
    for path, data in (("/ingest", event(2)), ("/ingest/batch", [event(3), event(4)])):
        response = post(client, path, data)
        assert response.status_code == 503, response.content
        assert response["Retry-After"] == "2"
        assert response.json()["error"].startswith("Queue backlog of 3 batches")
    assert stats(client)[1]["events_count"] == 1
    QueuedTask.objects.filter(pk__in=queued).delete()  # the workers caught up
    assert post(client, "/ingest", event(2)).status_code == 202
    assert stats(client)[1]["events_count"] == 2
