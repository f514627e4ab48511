"""Memory and rate over a long batch load: `manage.py serve` on the embedded
default (or with --set overrides), `POST /ingest/batch` of 100 events from wrk
for --minutes, in one-minute runs; after each minute the rate, p99, the serve
tree's PSS (summed over its processes) and the server CPU per event (web /
workers); at the end, every acknowledged event counted in /stats or not. The PSS
of each process role (granian's main process and workers, django-q2's qcluster,
sentinel, monitor, pusher and queue workers) is printed idle after start, after
the warm-up and at the end.

    .venv/bin/python -m bench.soak                 # 10 minutes (the issue's memory run)
    .venv/bin/python -m bench.soak --minutes 2 --set processor.batch_size=100

Loopback only; bounded: --minutes one-minute wrk runs, then at most 180 s of
catching up.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.load import wrk_run
from bench.machine import load_average, tree_cpu_split, tree_pss_mb
from bench.report import _drain, _events_count, _settle, parse_overrides
from bench.servers import REPO, start_telemetron
from tests.faults.roles import TreeWatch

WORK = REPO / "bench" / ".work"


@dataclass
class Minute:
    minute: int
    events_per_s: float
    p99_ms: float
    errors: int
    pss_mb: float
    web_us_per_event: float
    workers_us_per_event: float
    counted_behind: int  # acknowledged but not yet counted in /stats at the minute's end
    wal_mb: float | None  # the SQLite database's write-ahead log (None on PostgreSQL)


def _wal_mb(workdir: Path) -> float | None:
    wal = workdir / "telemetron.sqlite3-wal"
    return round(wal.stat().st_size / 2**20, 1) if wal.exists() else None


def _pss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def roles_pss_mb(root: int, *, queue_workers: int) -> dict[str, list[float]]:
    """Role -> the PSS of each of its processes, MB (one snapshot of the tree)."""
    watch = TreeWatch(root, command="serve", workers=queue_workers)
    watch.poll()
    return {role: [round(_pss_mb(pid), 1) for pid in pids] for role, pids in watch.roles().items()}


def roles_line(label: str, roles: dict[str, list[float]]) -> str:
    parts = [
        f"{role} {'+'.join(f'{mb:.0f}' for mb in sizes)}" for role, sizes in sorted(roles.items())
    ]
    total = sum(sum(sizes) for sizes in roles.values())
    return f"PSS by role, {label}: {total:.0f} MB = " + ", ".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=int, default=10, help="minutes of load (10)")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections (64)")
    parser.add_argument("--wrk-threads", type=int, default=2, help="wrk threads (2)")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override a config.toml key, e.g. queue.bulk=10")  # fmt: skip
    parser.add_argument("--queue-workers", type=int, default=2,
                        help="queue.workers of the tree (2), to name its processes")  # fmt: skip
    parser.add_argument("--json", type=Path, metavar="FILE", help="append the result as JSON")
    args = parser.parse_args(argv)
    if not 1 <= args.minutes <= 60:
        parser.error("--minutes: 1 to 60")
    WORK.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="soak-", dir=WORK))
    server = start_telemetron(workdir, parse_overrides(args.set))
    rows: list[Minute] = []
    print(f"soak: {args.minutes} min of POST /ingest/batch (100 events), wrk -t{args.wrk_threads}"
          f" -c{args.connections}; load before: {load_average()}", flush=True)  # fmt: skip
    print("| minute | events/s | p99 ms | errors | serve tree PSS MB | web µs/event |"
          " workers µs/event | acked, not yet counted | SQLite WAL MB |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|", flush=True)
    roles: dict[str, dict[str, list[float]]] = {}

    def note_roles(label: str) -> None:
        roles[label] = roles_pss_mb(server.proc.pid, queue_workers=args.queue_workers)
        print(roles_line(label, roles[label]), flush=True)

    try:
        note_roles("idle after start")
        wrk_run(
            server.url,
            "batch.lua",
            threads=args.wrk_threads,
            connections=args.connections,
            duration_s=3,
        )  # fmt: skip  (warm-up)
        base = _settle(server)
        note_roles("after the warm-up")
        acked = 0
        web0, workers0 = tree_cpu_split(server.proc.pid)
        for minute in range(1, args.minutes + 1):
            wrk = wrk_run(server.url, "batch.lua", threads=args.wrk_threads,
                          connections=args.connections, duration_s=60)  # fmt: skip
            events = wrk.ok_requests * wrk.events_per_request
            acked += events
            web1, workers1 = tree_cpu_split(server.proc.pid)
            row = Minute(
                minute, round(wrk.events_per_s), wrk.p99_ms, wrk.status_errors + wrk.socket_errors,
                round(tree_pss_mb(server.proc.pid)),
                round((web1 - web0) / max(events, 1) * 1e6, 1),
                round((workers1 - workers0) / max(events, 1) * 1e6, 1),
                acked - (_events_count(server) - base), _wal_mb(workdir),
            )  # fmt: skip
            web0, workers0 = web1, workers1
            rows.append(row)
            print(f"| {row.minute} | {row.events_per_s:,.0f} | {row.p99_ms:.0f} | {row.errors} |"
                  f" {row.pss_mb} | {row.web_us_per_event} | {row.workers_us_per_event} |"
                  f" {row.counted_behind:,} | {row.wal_mb if row.wal_mb is not None else ''} |",
                  flush=True)  # fmt: skip
        visible, drain_s = _drain(server, base + acked, time.monotonic())
        counted = visible - base
        print(f"\nacknowledged {acked:,} events, {counted:,} counted in /stats"
              f" ({drain_s:.1f} s after the load); serve tree PSS at the end:"
              f" {tree_pss_mb(server.proc.pid):.0f} MB; load after: {load_average()}")  # fmt: skip
        note_roles("at the end")
    finally:
        code = server.stop()
    if args.json:
        with args.json.open("a") as fh:
            fh.write(json.dumps({"minutes": [asdict(r) for r in rows], "roles": roles}) + "\n")
    if code != 0:
        print(f"warning: serve exited with {code}; log: {server.log_path}", file=sys.stderr)
    return 0 if counted >= acked else 1


if __name__ == "__main__":
    sys.exit(main())
