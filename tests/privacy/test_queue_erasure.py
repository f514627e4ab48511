"""A person's events erased from the queue on both brokers, on the real database
and the real Redis (broker/erasure.py, ``tasks_scan`` / ``task_replace`` of
broker/orm.py and broker/redis_streams.py, ``batch_without`` of
broker/packages.py): waiting batches rewritten (same batch id, a package the
cluster accepts) or removed, claimed ones left alone and counted in flight (or
waited for, then erased where they landed), nobody else's events touched, a dry
run changing nothing, a second run erasing 0."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from django.db import connection
from django.utils import timezone
from django_q.conf import Conf

from archive.models import ArchivedEvent
from archive.services import batch_archive
from broker.erasure import queue_erase
from broker.orm import OrmBroker
from broker.packages import batch_args, batch_package
from broker.redis_streams import RedisStreamsBroker
from core.erasure import ErasureTarget
from plugins.base import Event
from privacy.models import ErasureAudit
from privacy.services import privacy_erase
from tests.conftest import event

pytestmark = pytest.mark.django_db(transaction=True)

REDIS_URL = "redis://127.0.0.1:6379/0"
ALICE = ErasureTarget(7, "alice", ("userId", "anonymousId"))
AnyBroker = OrmBroker | RedisStreamsBroker


@pytest.fixture(params=["orm", "redis"])
def queue(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[AnyBroker]:
    monkeypatch.setattr(Conf, "REDIS", REDIS_URL)
    name = f"test-{uuid.uuid4().hex}"
    made: AnyBroker = OrmBroker(name) if request.param == "orm" else RedisStreamsBroker(name)
    made.cluster_id = f"cluster-{uuid.uuid4().hex[:8]}"
    try:
        yield made
    finally:
        if request.param == "redis":
            redis.from_url(REDIS_URL).delete(f"django_q:{name}:stream", f"django_q:{name}:leases")
        else:
            made.purge_queue()


def ev(user: str | None, *, source: int = 7, key: str = "userId", n: int = 0) -> dict[str, Any]:
    data: dict[str, Any] = {"n": n}
    if user is not None:
        data[key] = user
    return event(source, "Page", data=data)


def batches(queue: AnyBroker) -> list[tuple[str, list[dict[str, Any]]]]:
    """Each stored batch task's id and events, in queue order."""
    out = []
    for chunk in queue.tasks_scan():
        for task in chunk:
            found = batch_args(task.payload)
            assert found is not None, "a rewritten package must still load (signed)"
            (batch_id, events, _, _), _ = found
            out.append((batch_id, json.loads(events)))
    return out


def test_waiting_batches_lose_the_persons_events_only(queue: AnyBroker) -> None:
    mixed = [ev("alice", n=1), ev("bob", n=2), ev("alice", key="anonymousId", n=3)]
    only_alice = [ev("alice", n=4)]
    elsewhere = [ev("alice", source=8, n=5), ev(None, n=6), ev("alicia", n=7)]
    queue.commit([batch_package(b) for b in (mixed, only_alice, elsewhere)])
    before = {batch_id: events for batch_id, events in batches(queue)}

    assert queue_erase(target=ALICE, dry_run=True, queue=queue).events == 3
    assert {b: e for b, e in batches(queue)} == before  # the dry run changed nothing

    erased = queue_erase(target=ALICE, queue=queue)
    assert (erased.events, erased.rewritten, erased.removed, erased.in_flight) == (3, 1, 1, 0)
    after = dict(batches(queue))
    mixed_id, _, elsewhere_id = list(before)
    assert set(after) == {mixed_id, elsewhere_id}  # same batch ids; the empty one removed
    assert [e["data"]["n"] for e in after[mixed_id]] == [2]
    assert after[elsewhere_id] == before[elsewhere_id]

    assert queue_erase(target=ALICE, queue=queue).events == 0  # a second run erases 0


def test_a_rewritten_batch_is_claimed_and_runs_with_the_others_events(queue: AnyBroker) -> None:
    queue.commit([batch_package([ev("alice"), ev("bob", n=2)])])
    queue_erase(target=ALICE, queue=queue)
    queue.set_stat(f"{Conf.Q_STAT}:{queue.cluster_id}", "status", 3)  # a live lease
    claimed = queue.dequeue()
    assert claimed is not None and len(claimed) == 1
    found = batch_args(claimed[0][1])
    assert found is not None
    assert [e["data"] for e in json.loads(found[0][1])] == [{"n": 2, "userId": "bob"}]


def test_claimed_batches_are_left_alone_and_counted_in_flight(queue: AnyBroker) -> None:
    queue.commit([batch_package([ev("alice", n=1)])])
    queue.set_stat(f"{Conf.Q_STAT}:{queue.cluster_id}", "status", 3)
    claimed = queue.dequeue()
    assert claimed is not None
    queue.commit([batch_package([ev("alice", n=2), ev("bob", n=3)])])  # waiting

    erased = queue_erase(target=ALICE, queue=queue)
    assert (erased.events, erased.in_flight) == (1, 1)
    stored = batches(queue)
    assert [[e["data"]["n"] for e in events] for _, events in stored] == [[1], [3]]


def test_with_a_wait_a_batch_in_flight_is_erased_where_it_lands(queue: AnyBroker) -> None:
    """A worker holds a batch with the person's event; it archives the batch and
    acknowledges it a second later. ``privacy_erase`` with a wait erases the event
    from the archive in the same run, and nothing is left in flight."""
    queue.commit([batch_package([ev("alice", n=1), ev("bob", n=2)])])
    queue.set_stat(f"{Conf.Q_STAT}:{queue.cluster_id}", "status", 3)
    claimed = queue.dequeue()
    assert claimed is not None
    ((ack_id, payload),) = claimed
    found = batch_args(payload)
    assert found is not None

    def worker() -> None:
        time.sleep(1.0)
        events = tuple(Event.from_wire(e) for e in json.loads(found[0][1]))
        batch_archive(batch_id=found[0][0], events=events, received_at=timezone.now())
        queue.acknowledge(ack_id)
        connection.close()

    thread = threading.Thread(target=worker)
    thread.start()
    try:
        erased = privacy_erase(target=ALICE, by="test", wait_s=20, queue=queue)
    finally:
        thread.join(30)
    assert (erased.archive, erased.in_flight) == (1, 0)
    assert list(ArchivedEvent.objects.values_list("data__userId", flat=True)) == ["bob"]
    audit = ErasureAudit.objects.get(pk=erased.audit_id)
    assert (audit.archive_events, audit.in_flight_batches) == (1, 0)


def test_without_a_wait_a_batch_in_flight_is_reported(queue: AnyBroker) -> None:
    queue.commit([batch_package([ev("alice", n=1)])])
    queue.set_stat(f"{Conf.Q_STAT}:{queue.cluster_id}", "status", 3)
    assert queue.dequeue() is not None
    erased = privacy_erase(target=ALICE, by="test", queue=queue)
    assert (erased.events, erased.in_flight) == (0, 1)
    assert ErasureAudit.objects.get(pk=erased.audit_id).in_flight_batches == 1
