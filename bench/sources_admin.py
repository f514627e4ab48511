"""The admin's sources list and dashboard at a million sources, on PostgreSQL.

Fills ``--sources`` sources (1 million by default; names in an order unrelated
to the ids), their statistics and two event types each, then asks the admin,
through Django's test client in this process (the real views, templates and
queries), for pages of the sources list: by id and by name, ascending and
descending, the first and a far page, a search by exact id and by a part of the
name; and for the dashboard. For each: the wall time of the request, its
queries and their slowest, and the plan PostgreSQL ran for the page's listing
query (``EXPLAIN (ANALYZE, BUFFERS)``).

    .venv/bin/python -m bench.sources_admin --database postgresql://postgres@127.0.0.1:5432/telemetron_bench_sources

The database is created when missing and filled once (later runs reuse it).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from bench.database import django_start

BIAS = 2**63
LIST = "/admin/sources/source/"


def _setup(url: str) -> None:
    django_start(url)
    from django.core.management import call_command
    from django.test.utils import setup_test_environment

    setup_test_environment()  # the test client's host name is allowed
    call_command("migrate", verbosity=0)


def _fill(cur: Any, sources: int) -> None:
    cur.execute("SELECT (SELECT count(*) FROM sources_source), count(*) FROM stats_sourcestats")
    if min(cur.fetchone()) >= sources:
        print(f"{sources:,} sources there already")
        cur.execute("ANALYZE")
        return
    start = time.monotonic()
    for table in ("sources_source", "stats_sourcestats", "stats_sourceeventtype"):
        cur.execute(f"TRUNCATE {table} CASCADE")
    cur.execute(
        "INSERT INTO sources_source (source_id, name, enabled, allowed_origins, created_at,"
        " updated_at) SELECT i - %(bias)s, 'src-' || substr(md5(i::text), 1, 12), TRUE,"
        " '[]'::jsonb, now(), now() FROM generate_series(1::bigint, %(n)s) AS i",
        {"bias": BIAS, "n": sources},
    )
    cur.execute(
        "INSERT INTO stats_sourcestats (source_id, total_events, first_event_us, last_event_us)"
        " SELECT i - %(bias)s, (i * 7919) %% 1000 + 2, 1700000000000000 + i,"
        " 1700000000000000 + i * 1000 FROM generate_series(1::bigint, %(n)s) AS i",
        {"bias": BIAS, "n": sources},
    )
    cur.execute(
        "INSERT INTO stats_sourceeventtype (source_id, event_type, count)"
        " SELECT i - %(bias)s, t, 1 FROM generate_series(1::bigint, %(n)s) AS i,"
        " unnest(ARRAY['Heartbeat', 'Click']) AS t",
        {"bias": BIAS, "n": sources},
    )
    cur.execute("VACUUM ANALYZE")  # the visibility map: index-only scans from the start
    print(f"filled {sources:,} sources in {time.monotonic() - start:.0f} s")


def _measure(client: Any, label: str, path: str, params: dict[str, str]) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.get(path, params)  # warm
    with CaptureQueriesContext(connection) as queries:
        start = time.perf_counter()
        response = client.get(path, params)
        wall = (time.perf_counter() - start) * 1000
    assert response.status_code == 200, response.status_code
    slowest = max(float(q["time"]) for q in queries) * 1000
    print(f"\n## {label}: {path}?{'&'.join(f'{k}={v}' for k, v in params.items())}")
    print(f"wall {wall:.1f} ms, {len(queries)} queries, slowest {slowest:.1f} ms")
    keys = 'SELECT "sources_source"."source_id" AS'
    pages = ('SELECT "sources_source"."id"', keys)
    for sql in (q["sql"] for q in queries if q["sql"].startswith(pages)):
        if "LIMIT" not in sql and "IN (" in sql:
            continue  # the live keys of the page's sources
        print("  keys of the page:" if sql.startswith(keys) else "  the page's rows:")
        with connection.cursor() as cur:
            cur.execute(f"EXPLAIN (ANALYZE, BUFFERS, TIMING OFF) {sql}")
            for (line,) in cur.fetchall():
                print(f"    {line[:200]}")
    counts = [q["sql"] for q in queries if q["sql"].upper().startswith("SELECT COUNT(")]
    for sql in counts:
        print(f"  count: {sql[:160]}{'…' if len(sql) > 160 else ''}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", required=True, help="A PostgreSQL URL of its own.")
    parser.add_argument(
        "--sources", type=int, default=1_000_000, help="Sources to fill (default 1,000,000)."
    )
    args = parser.parse_args()
    if not args.database.startswith(("postgresql:", "postgres:")):
        parser.error("--database: a PostgreSQL URL (the list's plans are PostgreSQL's)")
    _setup(args.database)
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client

    with connection.cursor() as cur:
        _fill(cur, args.sources)
    user = User.objects.filter(username="bench").first() or User.objects.create_superuser(
        "bench", password="bench-only"
    )
    client = Client()
    client.force_login(user)
    far = str(args.sources // 100 // 2)  # a page in the middle
    _measure(client, "by id, first page", LIST, {})
    _measure(client, "by id, a middle page", LIST, {"p": far})
    _measure(client, "by id descending, first page", LIST, {"o": "-1"})
    _measure(client, "by name, first page", LIST, {"o": "2"})
    _measure(client, "by name descending, first page", LIST, {"o": "-2"})
    _measure(client, "by name, a middle page", LIST, {"o": "2", "p": far})
    _measure(client, "search, an exact id", LIST, {"q": str(args.sources // 3)})
    _measure(client, "search, a part of the name", LIST, {"q": "abc1"})
    _measure(client, "dashboard", "/admin/", {})


if __name__ == "__main__":
    main()
