"""The events-per-minute counter the merge keeps for the dashboard: exact under
the merge (once per batch id, like the stats), one statement per batch, a ring
of bounded size, read back as a series with every minute present."""

from __future__ import annotations

import random
import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from plugins.base import Event
from stats.aggregator import aggregate
from stats.minutes import RING_MINUTES, SHARDS, minute_counts_add_many, minute_series
from stats.models import MinuteCounts
from stats.store import TOTALS_SHARDS, DatabaseStore
from tests.conftest import event

pytestmark = pytest.mark.django_db

T0 = 29_000_000 * 60_000  # a minute boundary (2025-02-20), in ms


def batch_id_at(ms: int) -> str:
    """A UUIDv7 batch id received at ``ms`` (as ingest makes them)."""
    return f"{(ms << 80) | (0x7 << 76) | (0b10 << 62) | random.getrandbits(62):032x}"


def add(batch_ms: int, events: int, now_ms: int) -> None:
    with connection.cursor() as cur:
        minute_counts_add_many(cur, batches=[(batch_id_at(batch_ms), events)], now_ms=now_ms)


def figures(now_ms: int, minutes: int = 5) -> list[tuple[int, int, int, float | None, int]]:
    return [
        (f.minute - now_ms // 60_000, f.accepted, f.processed, f.lag_ms_mean, f.lag_ms_max)
        for f in minute_series(minutes=minutes, now_ms=now_ms)
    ]


def test_every_minute_is_in_the_series_with_zeros_where_nothing_came() -> None:
    assert figures(T0) == [(m, 0, 0, None, 0) for m in range(-4, 1)]


def test_accepted_by_received_minute_processed_by_merge_minute_with_the_lag() -> None:
    add(T0 + 1_000, 10, now_ms=T0 + 3_000)  # received and merged in minute 0, lag 2 s
    add(T0 + 50_000, 5, now_ms=T0 + 61_000)  # received in minute 0, merged in 1, lag 11 s
    add(T0 + 70_000, 1, now_ms=T0 + 70_500)  # minute 1, lag 0.5 s
    now = T0 + 61_000
    assert figures(now, 3) == [
        (-2, 0, 0, None, 0),
        (-1, 15, 10, 2_000.0, 2_000),
        (0, 1, 6, (5 * 11_000 + 500) / 6, 11_000),
    ]


def test_the_ring_keeps_its_size_and_a_minute_taken_over_starts_anew() -> None:
    for minute in range(3):
        add(T0 + minute * 60_000, 2, now_ms=T0 + minute * 60_000)
    later = T0 + RING_MINUTES * 60_000  # the row of minute 0 again
    add(later, 7, now_ms=later)
    assert MinuteCounts.objects.count() == 3
    assert figures(later, 1) == [(0, 7, 7, 0.0, 0)]
    # A batch received a ring ago (a late replay): processed only; its received
    # minute's row now holds the newer minute, left alone.
    lag = later - (T0 + 30_000)
    add(T0 + 30_000, 4, now_ms=later)
    assert figures(later, 1) == [(0, 7, 11, 4 * lag / 11, lag)]
    # One received a minute less long ago is still in the ring: counted there.
    add(T0 + 60_000, 1, now_ms=later)
    assert MinuteCounts.objects.get(minute=T0 // 60_000 + 1).accepted == 3


def test_a_write_of_a_minute_older_than_its_row_changes_nothing() -> None:
    later = T0 + RING_MINUTES * 60_000
    add(later, 3, now_ms=later)
    with connection.cursor() as cur:  # a node whose clock is a ring behind
        minute_counts_add_many(cur, batches=[("test-batch", 9)], now_ms=T0)
    assert MinuteCounts.objects.get().minute == later // 60_000
    assert figures(later, 1) == [(0, 3, 3, 0.0, 0)]


def test_the_table_is_bounded_by_the_ring() -> None:
    # One batch a minute for a ring and a half, from one process (one shard).
    for minute in range(RING_MINUTES + RING_MINUTES // 2):
        add(T0 + minute * 60_000, 1, now_ms=T0 + minute * 60_000)
    assert MinuteCounts.objects.count() == RING_MINUTES <= RING_MINUTES * SHARDS
    first_kept = T0 // 60_000 + RING_MINUTES // 2
    assert MinuteCounts.objects.filter(minute__lt=first_kept).count() == 0


def _merge(store: DatabaseStore, batch_id: str, n: int) -> bool:
    events = [Event.model_validate(event(i % 7, "Click")) for i in range(n)]
    return store.merge(batch_id=batch_id, aggregates=aggregate(events))


def test_the_merge_counts_each_batch_once_in_one_statement() -> None:
    store = DatabaseStore()
    now_ms = time.time_ns() // 1_000_000
    ids = [batch_id_at(now_ms - 1_000 * i) for i in range(3)]
    with CaptureQueriesContext(connection) as queries:
        for i, batch_id in enumerate(ids):
            assert _merge(store, batch_id, 10 + i)
    counter = [q["sql"] for q in queries if "stats_minutecounts" in q["sql"]]
    assert len(counter) == 3  # one statement per batch
    assert not _merge(store, ids[0], 10)  # a redelivery: counted before, not again
    series = minute_series(minutes=2)
    assert sum(f.processed for f in series) == 33 == store.totals()[1]
    assert sum(f.accepted for f in series) == 33


def test_a_minute_has_a_row_per_totals_shard() -> None:
    assert SHARDS == TOTALS_SHARDS
    for shard in (1, 2, TOTALS_SHARDS):
        with connection.cursor() as cur:
            minute_counts_add_many(cur, batches=[(batch_id_at(T0), shard)], shard=shard, now_ms=T0)
    assert MinuteCounts.objects.count() == 3
    assert figures(T0, 1) == [(0, 67, 67, 0.0, 0)]


def test_a_merge_of_nothing_counts_nothing() -> None:
    assert DatabaseStore().merge(batch_id=batch_id_at(T0), aggregates={})
    assert MinuteCounts.objects.count() == 0
