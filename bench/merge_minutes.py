"""What the dashboard's events-per-minute counter costs the stats merge: the
merge alone, in this process (``stats.store.DatabaseStore.merge``), ``--batches``
batches of 100 events over 10,000 sources, with the counter's statement and
without it (replaced by nothing), alternating rounds; client CPU and wall time
per event.

    .venv/bin/python -m bench.merge_minutes --database sqlite:///bench/.work/merge.sqlite3
    .venv/bin/python -m bench.merge_minutes --database postgresql://postgres@127.0.0.1:5432/telemetron_bench_merge
"""

from __future__ import annotations

import argparse
import random
import time

from bench.database import django_start


def _setup(url: str) -> None:
    django_start(url)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _round(batches: int, counter: bool) -> tuple[float, float]:
    from plugins.base import batch_id_new
    from stats import store as store_module
    from stats.aggregator import SourceAggregate

    real = store_module.minute_counts_add_many
    if not counter:
        store_module.minute_counts_add_many = lambda *a, **k: None  # type: ignore[assignment]
    try:
        store = store_module.DatabaseStore()
        rng = random.Random(7)
        work = []
        for _ in range(batches):
            aggs: dict[int, SourceAggregate] = {}
            for _ in range(100):
                sid = rng.randrange(10_000)
                aggs.setdefault(sid, SourceAggregate()).add(1_700_000_000_000_000, "Click")
            work.append((batch_id_new(), aggs))
        cpu, wall = time.process_time(), time.perf_counter()
        for batch_id, aggs in work:
            store.merge(batch_id=batch_id, aggregates=aggs)
        events = batches * 100
        return (
            (time.process_time() - cpu) / events * 1e6,
            (time.perf_counter() - wall) / events * 1e6,
        )
    finally:
        store_module.minute_counts_add_many = real


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", required=True, help="sqlite:///FILE or postgresql://…")
    parser.add_argument("--batches", type=int, default=300, help="Batches per round (300).")
    parser.add_argument("--rounds", type=int, default=3, help="Rounds of each (3).")
    args = parser.parse_args()
    _setup(args.database)
    _round(50, True)  # warm: statements prepared, caches filled
    for _ in range(args.rounds):
        for counter in (False, True):
            cpu, wall = _round(args.batches, counter)
            label = "with the counter   " if counter else "without the counter"
            print(f"{label}: client CPU {cpu:5.1f} µs/event, wall {wall:6.1f} µs/event")


if __name__ == "__main__":
    main()
