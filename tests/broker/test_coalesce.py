"""A claim's batch tasks run as one task (broker/coalesce.py,
processing.tasks.process_batches, DatabaseStore.merge_many): each batch
counted once, its dead letters and bisection as when it ran alone; on both
brokers a claim is one task, acknowledged whole."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from django.db import connection
from django_q.conf import Conf
from django_q.signing import SignedPackage

from broker import coalesce as coalesce_module
from broker.coalesce import ack_ids, coalesce
from broker.orm import OrmBroker
from broker.packages import PROCESS_MANY, PROCESS_TASK, wire_json
from broker.redis_streams import RedisStreamsBroker
from processing.models import DeadLetter
from processing.tasks import process_batch, process_batches
from stats.aggregator import aggregate_wire
from stats.minutes import minute_series
from stats.models import ProcessedBatch
from stats.store import get_store
from tests.processing.conftest import UseProcessors, wire_events
from tests.support.queues import REDIS_URL


def package(batch_id: str, events: list[dict[str, Any]], **kwargs: Any) -> str:
    """A batch task's signed package, as ingest enqueues one."""
    task = {"func": PROCESS_TASK, "args": (batch_id, wire_json(events), time.time()),
            "kwargs": kwargs, "id": batch_id, "name": batch_id}  # fmt: skip
    return str(SignedPackage.dumps(task))


def loaded(payload: str) -> dict[str, Any]:
    return dict(SignedPackage.loads(payload))


# --- coalesce() -----------------------------------------------------------------------


def test_a_run_of_batch_tasks_becomes_one_task_and_others_keep_their_place() -> None:
    other = str(SignedPackage.dumps({"func": "math.floor", "args": (1.5,), "kwargs": {}}))
    claim = [
        (1, package("b1", wire_events(2))),
        (2, package("b2", wire_events(3), redelivered=True)),
        (3, other),
        (4, package("b4", wire_events(1))),
        (5, "not a signed package"),
        (6, package("b6", wire_events(1))),
        (7, package("b7", wire_events(1))),
    ]
    out = coalesce(claim)
    assert [ack for ack, _ in out] == [(1, 2), 3, 4, 5, (6, 7)]
    first = loaded(out[0][1])
    assert first["func"] == PROCESS_MANY
    [batches] = first["args"]
    assert [(b[0], len(json.loads(b[1])), b[3]) for b in batches] == [
        ("b1", 2, False),
        ("b2", 3, True),  # the redelivery mark travels with its batch
    ]
    assert out[1][1] == other and out[2][1] == claim[3][1] and out[3][1] == claim[4][1]
    assert ack_ids(out[0][0]) == [1, 2] and ack_ids(4) == [4]


def test_a_coalesced_task_holds_at_most_max_chars_of_events(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    claim = [(i, package(f"b{i}", wire_events(10))) for i in range(6)]
    one = len(wire_json(wire_events(10)))
    monkeypatch.setattr(coalesce_module, "MAX_CHARS", 2 * one)
    assert [ack for ack, _ in coalesce(claim)] == [(0, 1), (2, 3), (4, 5)]


# --- process_batches -------------------------------------------------------------------


def _task(batch_id: str, events: list[dict[str, Any]]) -> tuple[str, str, float, bool]:
    return (batch_id, wire_json(events), time.time(), False)


@pytest.mark.django_db
def test_batches_together_are_counted_once_each_a_batch_merged_before_not_again(
    use_processors: UseProcessors,
) -> None:
    use_processors(("StorageProcessor", {}))
    seen = wire_events(4, source_id=7)
    process_batch("seen", wire_json(seen), time.time())
    tasks = [
        _task("a", wire_events(5, source_id=1)),
        _task("seen", seen),  # a redelivery: its batch was merged
        _task("b", wire_events(3, source_id=1, type="Buy")),
        _task("c", wire_events(2, source_id=2)),
        _task("a", wire_events(5, source_id=1)),  # twice in one task: once
    ]
    reports = process_batches(tasks)
    assert [r.processed for r in reports] == [5, 4, 3, 2, 5]
    assert get_store().totals() == (3, 4 + 5 + 3 + 2)
    one = get_store().source(1)
    assert one is not None and one.total_events == 8
    assert one.event_types == {"Click": 5, "Buy": 3}
    assert set(ProcessedBatch.objects.values_list("batch_id", flat=True)) == {
        "seen",
        "a",
        "b",
        "c",
    }
    assert sum(m.processed for m in minute_series(minutes=2)) == 14


@pytest.mark.django_db
def test_a_merge_of_many_is_what_merges_one_by_one_would_be(
    use_processors: UseProcessors,
) -> None:
    use_processors(("StorageProcessor", {}))
    batches = [
        (f"m{i}", [{**e, "sourceId": 1 + (i * 7 + j) % 5} for j, e in enumerate(wire_events(9))])
        for i in range(6)
    ]
    process_batches([_task(b, events) for b, events in batches])
    together = [get_store().source(s) for s in range(1, 6)], get_store().totals()
    with connection.cursor() as cur:
        for table in ("stats_sourcestats", "stats_sourceeventtype", "stats_processedbatch"):
            cur.execute(f"DELETE FROM {table}")
        cur.execute("UPDATE stats_statstotals SET sources_count = 0, events_count = 0")
    for b, events in batches:
        get_store().merge(batch_id=b, aggregates=aggregate_wire(events))
    assert ([get_store().source(s) for s in range(1, 6)], get_store().totals()) == together


@pytest.mark.django_db
def test_when_the_merge_of_many_fails_each_batch_is_merged_alone(
    use_processors: UseProcessors, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_processors(("StorageProcessor", {}))
    store = get_store()
    merge_many = store.merge_many

    def fails(batches: Any) -> set[str]:
        if len(batches) > 1:  # the merge of the two together, not each alone
            raise RuntimeError("the database went away for a moment")
        return merge_many(batches)

    monkeypatch.setattr(store, "merge_many", fails)
    reports = process_batches([_task("x", wire_events(3)), _task("y", wire_events(4))])
    assert [r.processed for r in reports] == [3, 4]
    assert store.totals() == (1, 7)
    assert not DeadLetter.objects.exists()


@pytest.mark.django_db
def test_a_poison_event_among_batches_is_dead_lettered_as_when_its_batch_ran_alone(
    use_processors: UseProcessors, tmp_path: Any
) -> None:
    use_processors(
        ("PoisonProcessor", {"record_path": str(tmp_path / "poison.jsonl")}),
        ("StorageProcessor", {}),
    )
    poisoned = wire_events(8, source_id=3)
    poisoned[5]["type"] = "Poison"
    reports = process_batches(
        [_task("ok1", wire_events(4)), _task("bad", poisoned), _task("ok2", wire_events(2))]
    )
    assert [(r.processed, r.dead_lettered) for r in reports] == [
        (4, {}),
        (7, {"PoisonProcessor": 1}),
        (2, {}),
    ]
    [letter] = DeadLetter.objects.all()
    assert letter.batch_id.startswith("bad.") and letter.events == [poisoned[5]]
    assert get_store().totals() == (2, 4 + 8 + 2)  # the StorageProcessor counted every one


# --- the brokers ------------------------------------------------------------------------


@pytest.fixture(params=["orm", "redis"])
def claiming(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[OrmBroker | RedisStreamsBroker]:
    monkeypatch.setattr(Conf, "REDIS", REDIS_URL)
    queue = f"test-{uuid.uuid4().hex}"
    b = OrmBroker(queue) if request.param == "orm" else RedisStreamsBroker(queue)
    b.coalesce = True  # as in a cluster (tests/config.toml turns it off in-process)
    try:
        yield b
    finally:
        if request.param == "redis":
            redis.from_url(REDIS_URL).delete(f"django_q:{queue}:stream", f"django_q:{queue}:leases")


@pytest.mark.django_db(transaction=True)
def test_a_claim_is_handed_out_as_one_task_and_acknowledged_whole(
    claiming: OrmBroker | RedisStreamsBroker,
) -> None:
    for i in range(5):
        claiming.enqueue(package(f"q{i}", wire_events(2)))
    [(ack, payload)] = claiming.dequeue() or []
    assert len(ack_ids(ack)) == 5
    assert [b[0] for b in loaded(payload)["args"][0]] == [f"q{i}" for i in range(5)]
    assert (claiming.queue_size(), claiming.lock_size()) == (0, 5)
    claiming.acknowledge(ack)
    assert (claiming.queue_size(), claiming.lock_size()) == (0, 0)
    assert claiming.dequeue() is None
