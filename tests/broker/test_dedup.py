"""Exactly-once by event id at the broker commit (broker/commit.py), on both of our
brokers, on the real database and the real Redis: the (source, id) record and
the enqueue are one atomic step, so a repeat is dropped however the commits
interleave, an id of another source is another id, and records older than
``ingest.dedup_window`` no longer count and are purged."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from django.db import connection
from django_q.conf import Conf
from django_q.signing import SignedPackage

from broker.commit import broker_commit
from broker.interface import queue_broker
from broker.models import SeenMessage
from broker.orm import OrmBroker
from broker.redis_streams import RedisStreamsBroker
from core.metrics.series import EVENTS_DEDUPLICATED

pytestmark = pytest.mark.django_db(transaction=True)

REDIS_URL = "redis://127.0.0.1:6379/0"
AnyBroker = OrmBroker | RedisStreamsBroker


class Queue:
    def __init__(self, kind: str) -> None:
        self.kind, self.name = kind, f"test-{uuid.uuid4().hex}"

    def broker(self) -> AnyBroker:
        return OrmBroker(self.name) if self.kind == "orm" else RedisStreamsBroker(self.name)

    def commit(self, broker: AnyBroker, batches: list[list[dict[str, Any]]]) -> None:
        with queue_broker.override(broker):
            broker_commit(batches)

    def events(self) -> list[dict[str, Any]]:
        """Every event of every task in the queue, in order."""
        if self.kind == "orm":
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT payload FROM processing_queuedtask WHERE queue = %s ORDER BY id",
                    [self.name],
                )
                payloads = [row[0] for row in cursor.fetchall()]
        else:
            entries = redis.from_url(REDIS_URL).xrange(f"django_q:{self.name}:stream")
            payloads = [fields[b"t"].decode() for _, fields in entries]
        out: list[dict[str, Any]] = []
        for payload in payloads:
            out += json.loads(SignedPackage.loads(payload)["args"][1])
        return out


@pytest.fixture(params=["orm", "redis"])
def queue(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Queue]:
    monkeypatch.setattr(Conf, "REDIS", REDIS_URL)
    monkeypatch.setattr(Conf, "SYNC", False)  # enqueue, as serve does (tests run inline)
    made = Queue(request.param)
    try:
        yield made
    finally:
        if request.param == "redis":
            client = redis.from_url(REDIS_URL)
            keys = list(client.scan_iter(f"django_q:{made.name}:*"))
            if keys:
                client.delete(*keys)


def ev(source: int, event_id: str | None, n: int = 0) -> dict[str, Any]:
    out: dict[str, Any] = {
        "sourceId": source,
        "type": "T",
        "timestamp": "2026-11-20T10:00:00Z",
        "data": {"n": n},
    }
    if event_id is not None:
        out["id"] = event_id
    return out


def deduplicated() -> float:
    return EVENTS_DEDUPLICATED._value.get()  # type: ignore[attr-defined]


def test_a_repeat_is_dropped_and_counted(queue: Queue) -> None:
    broker = queue.broker()
    before = deduplicated()
    queue.commit(broker, [[ev(1, "a"), ev(1, "b"), ev(1, None)]])
    queue.commit(broker, [[ev(1, "a", 2), ev(2, "a"), ev(1, None)], [ev(1, "b"), ev(1, "c")]])
    queue.commit(broker, [[ev(1, "a"), ev(1, "b"), ev(1, "c")]])  # all seen: no task
    got = [(e["sourceId"], e.get("id"), e["data"]["n"]) for e in queue.events()]
    assert got == [
        (1, "a", 0),
        (1, "b", 0),
        (1, None, 0),
        (2, "a", 0),
        (1, None, 0),
        (1, "c", 0),
    ]
    assert deduplicated() - before == 5


def test_repeats_within_one_commit_keep_the_first(queue: Queue) -> None:
    queue.commit(queue.broker(), [[ev(1, "a", 1), ev(1, "a", 2)], [ev(1, "a", 3)]])
    assert [e["data"]["n"] for e in queue.events()] == [1]


def test_concurrent_commits_of_the_same_ids_take_each_once(queue: Queue) -> None:
    threads_n, ids_n = 8, 40
    start = threading.Barrier(threads_n)
    errors: list[BaseException] = []

    def commit(t: int) -> None:
        broker = queue.broker()
        try:
            start.wait()
            for round_ in range(5):  # overlapping ids, in different orders and splits
                ids = [f"id-{(i * (t + 1) + round_) % ids_n}" for i in range(ids_n)]
                events = [ev(9, i, t) for i in ids]
                queue.commit(broker, [events[:15], events[15:]])
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=commit, args=(t,)) for t in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    taken = Counter(e["id"] for e in queue.events())
    assert taken == {f"id-{i}": 1 for i in range(ids_n)}


def test_records_older_than_the_window_no_longer_count(queue: Queue) -> None:
    broker = queue.broker()
    queue.commit(broker, [[ev(1, "a")]])
    if isinstance(broker, OrmBroker):
        SeenMessage.objects.update(seen_at=time.time() - 25 * 3600)
        queue.commit(broker, [[ev(1, "a", 1)]])
        assert SeenMessage.objects.count() == 1  # taken over, not doubled
        SeenMessage.objects.update(seen_at=time.time() - 25 * 3600)
        broker.seen_purge(window_s=24 * 3600)
        assert SeenMessage.objects.count() == 0
    else:
        client = redis.from_url(REDIS_URL)
        ttl = client.pttl(broker.seen_key(1, "a"))
        assert 24 * 3600 * 1000 - 60_000 < ttl <= 24 * 3600 * 1000
        client.delete(broker.seen_key(1, "a"))  # what its expiry does
        queue.commit(broker, [[ev(1, "a", 1)]])
    assert [e["data"]["n"] for e in queue.events()] == [0, 1]


def test_the_orm_clusters_housekeeping_purges_old_records(monkeypatch: pytest.MonkeyPatch) -> None:
    """(On Redis the records expire: the TTL is read above.)"""
    monkeypatch.setattr(Conf, "SYNC", False)
    queue = Queue("orm")
    broker = queue.broker()
    queue.commit(broker, [[ev(1, "old"), ev(1, "new")]])
    SeenMessage.objects.filter(message_id="old").update(seen_at=time.time() - 25 * 3600)
    broker.cluster_id = f"cluster-{uuid.uuid4().hex[:8]}"
    broker.set_stat(f"{Conf.Q_STAT}:{broker.cluster_id}", "status", 3)
    assert list(SeenMessage.objects.values_list("message_id", flat=True)) == ["new"]


def test_the_web_processes_purge_old_records_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """With queue.workers = 0 no cluster runs: the commits purge, once a minute."""
    monkeypatch.setattr(Conf, "SYNC", False)
    queue = Queue("orm")
    broker = queue.broker()
    queue.commit(broker, [[ev(1, "old")]])
    SeenMessage.objects.update(seen_at=time.time() - 25 * 3600)
    queue.commit(broker, [[ev(1, "new")]])  # within the minute: not yet
    assert SeenMessage.objects.count() == 2
    broker._next_seen_purge = 0.0  # a minute later
    queue.commit(broker, [[ev(1, "newer")]])
    assert sorted(SeenMessage.objects.values_list("message_id", flat=True)) == ["new", "newer"]
