"""The stats stores: a batch merges once (by its id), u64 source ids survive the
database's signed 64-bit integers, totals stay in step with the sources."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from plugins.base import U64_MAX, Event
from stats.aggregator import aggregate
from stats.minutes import minute_series
from stats.models import StatsTotals
from stats.store import DatabaseStore, MemoryStore, StatsStore
from tests.conftest import event
from tests.stats.test_minutes import batch_id_at

pytestmark = pytest.mark.django_db

STORES: dict[str, Callable[[], StatsStore]] = {"database": DatabaseStore, "memory": MemoryStore}


@pytest.fixture(params=list(STORES))
def store(request: pytest.FixtureRequest) -> StatsStore:
    return STORES[request.param]()


def merge(store: StatsStore, batch_id: str, *specs: tuple[int, str, str]) -> bool:
    events = [Event.model_validate(event(sid, typ, ts)) for sid, typ, ts in specs]
    return store.merge(batch_id=batch_id, aggregates=aggregate(events))


def test_empty_store(store: StatsStore) -> None:
    assert store.totals() == (0, 0)
    assert store.source(1) is None


def test_merge_and_read_back(store: StatsStore) -> None:
    assert merge(
        store,
        "b1",
        (1, "Heartbeat", "2023-10-27T09:30:00Z"),
        (1, "Click", "2023-10-27T09:31:00.5Z"),
        (2, "Heartbeat", "2023-10-27T09:32:00Z"),
    )
    assert store.totals() == (2, 3)
    view = store.source(1)
    assert view is not None
    assert view.source_id == 1
    assert view.total_events == 2
    assert view.first_event == datetime(2023, 10, 27, 9, 30, tzinfo=UTC)
    assert view.last_event == datetime(2023, 10, 27, 9, 31, 0, 500000, tzinfo=UTC)
    assert view.event_types == {"Click": 1, "Heartbeat": 1}


def test_a_batch_id_merges_once(store: StatsStore) -> None:
    spec = (1, "Heartbeat", "2023-10-27T09:30:00Z")
    assert merge(store, "same", spec) is True
    assert merge(store, "same", spec, spec) is False  # a redelivery or a replay
    assert store.totals() == (1, 1)
    assert merge(store, "other", spec) is True
    assert store.totals() == (1, 2)


def test_later_batches_widen_first_and_last_and_add_types(store: StatsStore) -> None:
    merge(store, "b1", (5, "A", "2023-10-27T09:30:00Z"))
    merge(store, "b2", (5, "B", "2023-10-26T09:30:00Z"), (5, "A", "2023-10-28T09:30:00Z"))
    merge(store, "b3", (5, "A", "2023-10-27T10:00:00Z"))
    view = store.source(5)
    assert view is not None
    assert (view.first_event.day, view.last_event.day) == (26, 28)
    assert view.total_events == 4
    assert view.event_types == {"A": 3, "B": 1}
    assert store.totals() == (1, 4)  # one source, however many batches


@pytest.mark.parametrize("source_id", [0, 2**63 - 1, 2**63, U64_MAX])
def test_u64_source_ids_round_trip(store: StatsStore, source_id: int) -> None:
    merge(store, f"b{source_id}", (source_id, "Heartbeat", "2023-10-27T09:30:00Z"))
    view = store.source(source_id)
    assert view is not None and view.source_id == source_id
    assert store.source(source_id ^ 1) is None  # the neighbour is not confused with it


def test_database_store_keeps_u64_bounds_apart() -> None:
    store = DatabaseStore()
    merge(store, "b", (0, "A", "2023-10-27T09:30:00Z"), (U64_MAX, "B", "2023-10-27T09:30:00Z"))
    merge(store, "c", (2**63, "C", "2023-10-27T09:30:00Z"))
    assert store.totals() == (3, 3)
    for sid, typ in ((0, "A"), (U64_MAX, "B"), (2**63, "C")):
        view = store.source(sid)
        assert view is not None and view.event_types == {typ: 1}


def test_database_store_works_after_the_tables_are_flushed() -> None:
    """`manage.py flush` empties the totals row too; the next merge recreates it."""
    StatsTotals.objects.all().delete()
    store = DatabaseStore()
    assert store.totals() == (0, 0)
    assert merge(store, "after-flush", (1, "A", "2023-10-27T09:30:00Z"))
    assert store.totals() == (1, 1)


def test_a_claim_holding_a_batch_merged_before_merges_the_others_once() -> None:
    """merge_many of a claim whose first batch was merged before (a redelivery
    coalesced with new batches): the new ones count, the old one not again; on
    PostgreSQL this is the path after the one-statement merge found a ledger row."""
    store = DatabaseStore()
    now_ms = time.time_ns() // 1_000_000
    ids = [batch_id_at(now_ms - 1_000 * i) for i in range(3)]
    one = [event(1, "A"), event(2, "B")]
    assert store.merge_many([(ids[0], one)]) == {ids[0]}
    merged = store.merge_many([(ids[0], one), (ids[1], [event(2, "B")]), (ids[2], [event(3, "C")])])
    assert merged == {ids[1], ids[2]}
    assert store.totals() == (3, 4)
    source_2 = store.source(2)
    assert source_2 is not None and source_2.total_events == 2
    assert source_2.event_types == {"B": 2}
    assert store.merge_many([(ids[0], one), (ids[1], [event(2, "B")])]) == set()
    assert store.totals() == (3, 4)
    series = minute_series(minutes=2)
    assert sum(f.processed for f in series) == 4 == sum(f.accepted for f in series)


def test_a_claim_of_new_batches_counts_new_sources_and_minutes_once() -> None:
    """The usual claim (every batch new): sources new in it counted once however
    many of its batches hold them, a source stored before not again."""
    store = DatabaseStore()
    now_ms = time.time_ns() // 1_000_000
    assert store.merge_many([(batch_id_at(now_ms), [event(1, "A")])])
    ids = [batch_id_at(now_ms - 1_000 * i) for i in range(1, 4)]
    batches = [(b, [event(1, "A"), event(10 + i, "B"), event(20, "C")]) for i, b in enumerate(ids)]
    assert store.merge_many(batches) == set(ids)
    assert store.totals() == (1 + 3 + 1, 1 + 9)
    source_20 = store.source(20)
    assert source_20 is not None and source_20.total_events == 3
    assert sum(f.processed for f in minute_series(minutes=2)) == 10
