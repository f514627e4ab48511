"""Merges at the same time (stats/store.py DatabaseStore): on PostgreSQL two
merges of different sources never wait for each other, and merges of the same
new source count it once; on SQLite, which runs one writer at a time, the write
lock is held for the merge's few statements only."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection, transaction

from plugins.base import Event
from stats.aggregator import SourceAggregate, aggregate
from stats.models import StatsTotals
from stats.store import TOTALS_SHARDS, DatabaseStore
from tests.conftest import event
from tests.support.databases import backend
from tests.support.procs import wait_until

pytestmark = pytest.mark.django_db(transaction=True)

postgres_only = pytest.mark.skipif(
    backend() != "postgresql", reason="row locks between merges: PostgreSQL pass only"
)
sqlite_only = pytest.mark.skipif(backend() != "sqlite", reason="SQLite's write lock: SQLite pass")


@pytest.fixture(autouse=True)
def totals_shards() -> None:
    """The shard rows a migrated database has (a transactional test's flush
    removes them)."""
    StatsTotals.objects.all().delete()
    StatsTotals.objects.bulk_create([StatsTotals(pk=pk) for pk in range(1, TOTALS_SHARDS + 1)])


def _aggregates(sources: range, per_source: int = 3) -> dict[int, SourceAggregate]:
    events = [
        Event.model_validate(event(sid, f"T{i % 2}", f"2023-10-27T09:3{i}:00Z"))
        for sid in sources
        for i in range(per_source)
    ]
    return aggregate(events)


class HeldMerge:
    """A merge in a thread of its own, inside a transaction kept open until
    :meth:`commit`: its row locks stay held meanwhile."""

    def __init__(self, batch_id: str, aggregates: dict[int, SourceAggregate]) -> None:
        self.merged = threading.Event()
        self.backend_pid = 0
        self._commit = threading.Event()
        self._errors: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, args=(batch_id, aggregates))

    def _run(self, batch_id: str, aggregates: dict[int, SourceAggregate]) -> None:
        try:
            with transaction.atomic():
                with connection.cursor() as cur:
                    cur.execute("SELECT pg_backend_pid()")
                    self.backend_pid = cur.fetchone()[0]
                DatabaseStore().merge(batch_id=batch_id, aggregates=aggregates)
                self.merged.set()
                self._commit.wait(60)
        except BaseException as exc:
            self._errors.append(exc)
        finally:
            self.merged.set()
            connection.close()

    def start(self) -> HeldMerge:
        self._thread.start()
        assert self.merged.wait(30)
        assert not self._errors, self._errors
        return self

    def commit(self) -> None:
        self._commit.set()
        self._thread.join(60)
        assert not self._errors, self._errors


@pytest.fixture
def held() -> Iterator[list[HeldMerge]]:
    started: list[HeldMerge] = []
    yield started
    for merge in started:
        merge.commit()


def _waiting_on_a_lock(pid: int) -> bool:
    with connection.cursor() as cur:
        cur.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid])
        row = cur.fetchone()
    return row is not None and row[0] == "Lock"


@postgres_only
def test_a_merge_of_other_sources_commits_while_one_is_held_open(held: list[HeldMerge]) -> None:
    first = HeldMerge("first", _aggregates(range(1, 51)))
    held.append(first.start())
    with connection.cursor() as cur:
        # Waiting for the held merge's locks would end in an error here, not a hang.
        cur.execute("SET lock_timeout = '5s'")
    try:
        assert DatabaseStore().merge(batch_id="second", aggregates=_aggregates(range(51, 101)))
        # Committed, while the first is still open (its rows are not visible yet).
        assert DatabaseStore().totals() == (50, 150)
    finally:
        with connection.cursor() as cur:
            cur.execute("RESET lock_timeout")
    first.commit()
    assert DatabaseStore().totals() == (100, 300)


@postgres_only
def test_merges_creating_the_same_source_at_once_count_it_once(held: list[HeldMerge]) -> None:
    first = HeldMerge("first", _aggregates(range(1, 3)))  # sources 1, 2
    held.append(first.start())
    second = HeldMerge("second", _aggregates(range(2, 4)))  # sources 2, 3
    second._thread.start()
    # The second merge waits for the first one's new row of source 2 ...
    wait_until(lambda: second.backend_pid and _waiting_on_a_lock(second.backend_pid))
    assert not second.merged.is_set()
    first.commit()  # ... and goes on once it is committed.
    assert second.merged.wait(30)
    second.commit()
    store = DatabaseStore()
    assert store.totals() == (3, 12)
    source_2 = store.source(2)
    assert source_2 is not None and source_2.total_events == 6


@sqlite_only
def test_sqlite_holds_the_write_lock_for_the_merge_statements_only() -> None:
    """Between BEGIN and COMMIT only the merge's five statements run, whatever the
    batch (here 100 sources, 200 types): the rows are built before BEGIN, and
    the sources and types go in one statement each."""
    aggregates = _aggregates(range(1, 101), per_source=2)
    store = DatabaseStore()
    store.merge(batch_id="warm-up", aggregates=_aggregates(range(1000, 1001)))
    connection.ensure_connection()
    raw: Any = connection.connection
    statements: list[str] = []
    raw.set_trace_callback(statements.append)
    try:
        assert store.merge(batch_id="traced", aggregates=aggregates)
    finally:
        raw.set_trace_callback(None)
    begin = next(i for i, sql in enumerate(statements) if sql.startswith("BEGIN"))
    assert statements[begin] == "BEGIN IMMEDIATE"
    assert statements[-1] == "COMMIT"
    inside = [sql.split(" (")[0] for sql in statements[begin + 1 : -1]]
    assert inside == [
        'INSERT INTO "stats_processedbatch"',
        'INSERT INTO "stats_sourcestats"',
        'INSERT INTO "stats_sourceeventtype"',
        'INSERT INTO "stats_statstotals"',
        'INSERT INTO "stats_minutecounts"',
    ]
    assert store.totals() == (101, 203)  # with the warm-up's 3 events
