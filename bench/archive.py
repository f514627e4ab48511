"""The ArchiveProcessor at scale, on PostgreSQL: an archive of ``--rows`` events
(10 million by default; ``--sources`` sources, received over 30 days), then

* ``archive export`` by source and received time (the command's own code:
  ``archive.selectors`` + ``archive.export``, to /dev/null): wall time, rows and
  rows/s, and the plan PostgreSQL chose; the same queries with the two indexes
  dropped (in a transaction rolled back) for comparison;
* the cost of archiving a 100-event batch into that table (CPU of this process
  and wall, per event);
* with ``--purge``, ``archive purge`` of the oldest day.

    .venv/bin/python -m bench.archive --database postgresql://postgres@127.0.0.1:5432/telemetron_bench

The database is created when missing and filled once (later runs reuse it).
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.database import django_start

INDEXES = {
    "archive_source_time": "(source_id, received_at, id)",
    "archive_time": "(received_at, id)",
}
BIAS = 2**63
DAYS = 30


def _setup(url: str) -> None:
    django_start(url)
    from django.core.management import call_command

    call_command("migrate", "archive", verbosity=0)


def _fill(cur: Any, rows: int, sources: int, now: datetime) -> None:
    cur.execute("SELECT count(*) FROM archive_archivedevent")
    have = cur.fetchone()[0]
    if have >= rows * 0.9:  # (a --purge run took the oldest day)
        print(f"archive holds {have:,} rows already")
        return
    start = time.monotonic()
    for name in INDEXES:
        cur.execute(f"DROP INDEX IF EXISTS {name}")
    step = 1_000_000
    first = now - timedelta(days=DAYS)
    for lo in range(have, rows, step):
        hi = min(lo + step, rows)
        cur.execute(
            "INSERT INTO archive_archivedevent"
            " (source_id, type, timestamp, data, received_at, batch_id)"
            " SELECT (i %% %(sources)s) - %(bias)s, 't' || ((i / %(sources)s) %% 5),"
            " %(first)s + i * interval '1 millisecond',"
            " jsonb_build_object('i', i, 'price', i %% 100, 'sku', 'SKU-' || (i %% 977)),"
            " %(first)s + (i::float8 / %(rows)s) * interval '30 days', 'bench' || (i / 100)"
            " FROM generate_series(%(lo)s, %(hi)s - 1) AS i",
            {"sources": sources, "bias": BIAS, "first": first, "rows": rows, "lo": lo, "hi": hi},
        )
        cur.connection.commit()
        print(f"  {hi:,} rows ({time.monotonic() - start:.0f} s)", flush=True)
    for name, columns in INDEXES.items():
        cur.execute(f"CREATE INDEX {name} ON archive_archivedevent {columns}")
        cur.connection.commit()
    cur.execute("ANALYZE archive_archivedevent")
    cur.connection.commit()
    print(f"filled and indexed in {time.monotonic() - start:.0f} s")


def _export(filters: Any) -> tuple[int, float, float]:
    """(rows, wall seconds, CPU seconds of this process) of one export."""
    from archive.export import export_write
    from archive.selectors import archived_events

    start, cpu = time.monotonic(), time.process_time()
    with open(os.devnull, "w") as out:
        count = export_write(archived_events(filters=filters), fmt="jsonl", out=out)
    return count, time.monotonic() - start, time.process_time() - cpu


def _plan(filters: Any) -> str:
    from django.db import connection

    from archive.selectors import archived_events_query

    sql, params = archived_events_query(filters=filters).query.sql_with_params()
    with connection.cursor() as django_cur:
        django_cur.execute("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) " + sql, params)
        lines = [r[0] for r in django_cur.fetchall()]
    return " / ".join(x.strip() for x in lines if "Scan" in x or "Sort" in x or "Execution" in x)


def _exports(sources: int, now: datetime) -> list[tuple[str, Any]]:
    from archive.selectors import ArchiveFilter

    s = sources // 2
    return [
        (f"--source {s} --since 2h", ArchiveFilter(source_id=s, since=now - timedelta(hours=2))),
        (f"--source {s} --since 7d", ArchiveFilter(source_id=s, since=now - timedelta(days=7))),
        (f"--source {s} --type t1 (all time)", ArchiveFilter(source_id=s, type="t1")),
        (
            f"--source {s} --since 20d --until 19d",
            ArchiveFilter(
                source_id=s, since=now - timedelta(days=20), until=now - timedelta(days=19)
            ),
        ),
        ("--since 2h (every source)", ArchiveFilter(since=now - timedelta(hours=2))),
    ]


def _measure_exports(sources: int, now: datetime) -> None:
    from django.db import connection, transaction

    print("\nexport (rows to /dev/null as JSON Lines; wall time)")
    for label, filters in _exports(sources, now):
        count, seconds, cpu = _export(filters)
        print(
            f"  {label:38s} {count:>9,} rows  {seconds * 1000:9.1f} ms"
            f"  ({count / seconds:,.0f} rows/s; {cpu / max(count, 1) * 1e6:.1f} µs CPU/row here)"
        )
        print(f"      plan: {_plan(filters)}")
    print("\nthe same without the two indexes (dropped in a transaction, rolled back)")
    with transaction.atomic():
        with connection.cursor() as cur:
            for name in INDEXES:
                cur.execute(f"DROP INDEX {name}")
        for label, filters in _exports(sources, now)[:2]:
            start = time.monotonic()
            plan = _plan(filters)
            print(f"  {label:38s} {(time.monotonic() - start) * 1000:9.1f} ms  plan: {plan}")
        transaction.set_rollback(True)


def _measure_inserts(batches: int) -> None:
    from archive.services import batch_archive
    from plugins.base import Event, batch_id_new

    events = tuple(
        Event.model_validate(
            {
                "sourceId": i % 50,
                "type": "purchase",
                "timestamp": "2026-11-20T10:00:00Z",
                "data": {"price": i, "sku": f"SKU-{i}", "tags": ["a", "b"]},
            }
        )
        for i in range(100)
    )
    cpu, wall = time.process_time(), time.monotonic()
    for _ in range(batches):
        batch_archive(batch_id=batch_id_new(), events=events, received_at=datetime.now(UTC))
    cpu, wall = time.process_time() - cpu, time.monotonic() - wall
    n = batches * 100
    print(
        f"\narchiving {batches} batches of 100 events into the full table:"
        f" {cpu / n * 1e6:.1f} µs CPU (this process) and {wall / n * 1e6:.1f} µs wall per event"
    )


def _measure_purge() -> None:
    from django.utils import timezone

    from archive.services import archive_purge

    before = timezone.now() - timedelta(days=DAYS - 1)
    start = time.monotonic()
    deleted = archive_purge(before=before)
    seconds = time.monotonic() - start
    print(
        f"\npurge of the oldest day: {deleted:,} rows in {seconds:.1f} s"
        f" ({deleted / max(seconds, 1e-9):,.0f} rows/s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", required=True, help="a PostgreSQL URL (its own database)")
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--sources", type=int, default=1000)
    parser.add_argument("--insert-batches", type=int, default=200)
    parser.add_argument("--purge", action="store_true", help="also purge the oldest day")
    args = parser.parse_args()
    _setup(args.database)
    from django.db import connection

    now = datetime.now(UTC)
    with connection.cursor() as cur:
        _fill(cur.cursor, args.rows, args.sources, now)
        cur.execute(
            "SELECT max(received_at) FROM archive_archivedevent WHERE batch_id LIKE 'bench%%'"
        )
        now = cur.fetchone()[0] or now
        cur.execute("SELECT pg_size_pretty(pg_total_relation_size('archive_archivedevent'))")
        print(f"table + indexes: {cur.fetchone()[0]}")
    _measure_exports(args.sources, now)
    _measure_inserts(args.insert_batches)
    if args.purge:
        _measure_purge()


if __name__ == "__main__":
    main()
