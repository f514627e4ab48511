"""The cost of exactly-once by event id at the broker commit (broker/commit.py): the
same commits of 100-event batches (one queue task each) with no ids, with new
ids (each recorded in the enqueue's transaction / script) and with ids already
recorded (the batch dropped), on the ORM broker (SQLite or PostgreSQL) and on
Redis, in one process, by the wall clock (the database's or Redis' own work
counts too) and this process's CPU.

    .venv/bin/python -m bench.dedup                                   # SQLite, ORM broker
    .venv/bin/python -m bench.dedup --database postgresql://postgres@127.0.0.1:5432/bench_dedup
    .venv/bin/python -m bench.dedup --redis redis://127.0.0.1:6379/0  # the Redis broker

Each row is the median of 5 rounds of N commits; the seen table starts empty
(PostgreSQL: the database is made and dropped; it must not exist).
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROUNDS = 5
EVENTS = 100


def _setup(workdir: Path, database: str | None, redis_url: str | None) -> None:
    url = database or f"sqlite:///{workdir / 'db.sqlite3'}"
    queue = f'broker = "redis"\nredis_url = "{redis_url}"\n' if redis_url else ""
    queue += f'name = "bench-{uuid.uuid4().hex[:8]}"\n'
    (workdir / "config.toml").write_text(
        f'[database]\nurl = "{url}"\n[queue]\nworkers = 2\n{queue}[logging]\nlevel = "WARNING"\n'
    )
    os.environ["TELEMETRON_CONFIG"] = str(workdir / "config.toml")
    os.environ["DJANGO_SETTINGS_MODULE"] = "telemetron_site.settings"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, stdout=io.StringIO())


def _events(tag: str, *, ids: bool) -> list[dict[str, Any]]:
    out = []
    for i in range(EVENTS):
        event: dict[str, Any] = {
            "sourceId": 1,
            "type": "Viewed",
            "timestamp": "2026-12-01T10:00:00Z",
            "data": {"userId": f"u{i}", "properties": {"i": i}},
        }
        if ids:
            event["id"] = f"{tag}-{i}"
        out.append(event)
    return out


def _measure(batches: list[list[dict[str, Any]]]) -> tuple[float, float]:
    """Median (wall, CPU) µs per event of committing ``batches`` one by one, per round."""
    from broker.commit import broker_commit

    per_round = len(batches) // ROUNDS
    walls, cpus = [], []
    for r in range(ROUNDS):
        mine = batches[r * per_round : (r + 1) * per_round]
        wall, cpu = time.perf_counter(), time.process_time()
        for batch in mine:
            broker_commit([batch])
        walls.append((time.perf_counter() - wall) / (len(mine) * EVENTS) * 1e6)
        cpus.append((time.process_time() - cpu) / (len(mine) * EVENTS) * 1e6)
    return statistics.median(walls), statistics.median(cpus)


def run(n: int) -> list[tuple[str, float, float]]:
    from broker.interface import queue_broker

    plain = [_events("", ids=False) for _ in range(n * ROUNDS)]
    fresh = [_events(uuid.uuid4().hex, ids=True) for _ in range(n * ROUNDS)]
    rows = [("no ids", *_measure(plain))]
    rows.append(("new ids (recorded with the enqueue)", *_measure(fresh)))
    rows.append(("repeated ids (whole batch dropped)", *_measure(fresh)))
    queue_broker().purge_queue()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=40, help="commits of 100 events per round")
    parser.add_argument("--database", help="a postgresql:// URL to make (default: SQLite)")
    parser.add_argument("--redis", help="a redis:// URL: the Redis broker instead of the ORM one")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        created = False
        if args.database:
            import psycopg

            base, _, name = args.database.rpartition("/")
            with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            created = True
        try:
            _setup(Path(tmp), args.database, args.redis)
            rows = run(args.n)
        finally:
            if created:
                from django.db import connections

                connections.close_all()
                with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE "{name}"')
    where = "Redis" if args.redis else ("PostgreSQL" if args.database else "SQLite")
    print(f"broker commit of {EVENTS}-event batches, {where}: µs per event (median of 5)")
    print(f"{'':40} {'wall':>8} {'CPU':>8}")
    for label, wall, cpu in rows:
        print(f"{label:40} {wall:8.1f} {cpu:8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
