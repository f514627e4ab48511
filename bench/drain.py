"""Processing capacity: the time a real `manage.py qcluster` takes to drain a
fixed backlog of 100-event batches (uniform over 10,000 sources), by database,
broker, number of queue workers and processor chain (StorageProcessor, or none:
django-q2's own ceiling with our task's parsing), with the CPU each part spent
per event (from /proc: the cluster's processes, PostgreSQL's backends of the
run's database, redis-server).

    .venv/bin/python -m bench.drain                      # the whole table (~5 min)
    .venv/bin/python -m bench.drain --setups pg-orm --workers 1 2 --batches 300

Each run: a fresh database (an SQLite file, or a PostgreSQL database created and
dropped), `migrate`, `plugins sync --force`, the backlog written through the
broker (`broker.commit.broker_commit`, as ingest does), then the cluster started;
the clock runs from its first claim to the last acknowledgement.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import psycopg
import redis

from bench.profile import pyspy_start

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "bench" / ".work"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/0"
SETUPS = {"sqlite-orm": ("sqlite", "orm"), "pg-orm": ("postgresql", "orm"),
          "pg-redis": ("postgresql", "redis")}  # fmt: skip

FILL = """
import random, time
from broker.commit import broker_commit
rng = random.Random(1)
types = [f"T{{i}}" for i in range(8)]
for _ in range({batches}):
    broker_commit([[{{"sourceId": rng.randint(1, 10000), "type": rng.choice(types),
        "timestamp": f"2026-11-{{rng.randint(1, 28):02d}}T10:{{rng.randint(0, 59):02d}}:00Z",
        "data": None}} for _ in range(100)]])
"""


@dataclass
class Run:
    setup: str
    processor: str
    workers: int
    batches: int
    seconds: float
    events_per_s: float
    cluster_us_per_event: float
    database_us_per_event: float
    redis_us_per_event: float
    load_before: float


def _ticks(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total


def _tree(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [pid], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _pids_named(name: str) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == name:
                    out.append(int(entry.name))
            except OSError:
                continue
    return out


class Project:
    def __init__(self, setup: str, processor: str, workers: int) -> None:
        self.db, self.broker = SETUPS[setup]
        self.dir = WORK / f"drain-{uuid.uuid4().hex[:8]}"
        self.dir.mkdir(parents=True)
        self.queue = f"bench-{uuid.uuid4().hex[:8]}"
        self.pg_name = f"telemetron_bench_{uuid.uuid4().hex[:8]}"
        if self.db == "postgresql":
            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{self.pg_name}"')
            self.url = PG_ADMIN.rsplit("/", 1)[0] + "/" + self.pg_name
        else:
            self.url = f"sqlite:///{self.dir / 'telemetron.sqlite3'}"
        plugins = "[processing.plugins.StorageProcessor]\n" if processor == "storage" else ""
        redis_keys = f'redis_url = "{REDIS_URL}"\n' if self.broker == "redis" else ""
        (self.dir / "config.toml").write_text(
            f'[queue]\nbroker = "{self.broker}"\n{redis_keys}name = "{self.queue}"\n'
            f'workers = {workers}\n[logging]\nlevel = "WARNING"\n{plugins}'
        )

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TELEMETRON_")}
        return env | {"TELEMETRON_CONFIG": str(self.dir / "config.toml"),
                      "TELEMETRON_DATABASE__URL": self.url,
                      "DJANGO_SETTINGS_MODULE": "telemetron_site.settings"}  # fmt: skip

    def manage(self, *args: str) -> None:
        subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], cwd=self.dir,
                       env=self.env(), check=True, capture_output=True)  # fmt: skip

    def waiting(self) -> tuple[int, int]:
        """(tasks in the broker, of which claimed)."""
        if self.broker == "redis":
            r = redis.from_url(REDIS_URL)
            stream = f"django_q:{self.queue}:stream"
            try:
                pending = int(r.xpending(stream, "workers")["pending"])
            except redis.ResponseError:
                pending = 0
            return int(r.xlen(stream)), pending
        sql = "SELECT COUNT(*), COUNT(NULLIF(owner, '')) FROM processing_queuedtask"
        if self.db == "postgresql":
            with psycopg.connect(self.url) as conn:
                row = conn.execute(sql).fetchone()
        else:
            import sqlite3

            with sqlite3.connect(self.url.removeprefix("sqlite:///"), timeout=30) as conn:
                row = conn.execute(sql).fetchone()
        assert row is not None
        return int(row[0]), int(row[1])

    def backends(self) -> list[int]:
        if self.db != "postgresql":
            return []
        with psycopg.connect(PG_ADMIN) as conn:
            rows = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s", [self.pg_name]
            ).fetchall()
        return [int(r[0]) for r in rows]

    def close(self) -> None:
        if self.db == "postgresql":
            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.pg_name}" WITH (FORCE)')
        if self.broker == "redis":
            redis.from_url(REDIS_URL).delete(
                f"django_q:{self.queue}:stream", f"django_q:{self.queue}:leases"
            )
        shutil.rmtree(self.dir, ignore_errors=True)


def _profile(pids: list[int], out: Path | None, label: str) -> list[subprocess.Popen[bytes]]:
    """py-spy on every process of the cluster (``--gil``, until it exits or 30 s)."""
    if out is None:
        return []
    out.mkdir(parents=True, exist_ok=True)
    return [pyspy_start(pid, out / f"{label}-{pid}.txt", duration_s=30) for pid in pids]


def drain(setup: str, processor: str, workers: int, batches: int,
          profile: Path | None = None) -> Run:  # fmt: skip
    project = Project(setup, processor, workers)
    try:
        project.manage("migrate", "--noinput")
        project.manage("plugins", "sync", "--force")
        project.manage("shell", "-c", FILL.format(batches=batches))
        assert project.waiting() == (batches, 0)
        load_before = os.getloadavg()[0]
        cluster = subprocess.Popen([sys.executable, str(ROOT / "manage.py"), "qcluster"],
                                   cwd=project.dir, env=project.env())  # fmt: skip
        spies: list[subprocess.Popen[bytes]] = []
        try:
            while project.waiting()[1] == 0:  # until the first claim
                time.sleep(0.01)
            start = time.monotonic()
            tree, pg, rs = _tree(cluster.pid), project.backends(), _pids_named("redis-server")
            ticks0 = (_ticks(tree), _ticks(pg), _ticks(rs))
            spies = _profile(tree, profile, f"{setup}-{processor}-{workers}")
            while project.waiting()[0] > 0:
                time.sleep(0.01)
            seconds = time.monotonic() - start
            tree, pg = _tree(cluster.pid), project.backends()
            ticks1 = (_ticks(tree), _ticks(pg), _ticks(rs))
        finally:
            cluster.send_signal(signal.SIGTERM)
            cluster.wait(60)
            for spy in spies:
                spy.wait(60)
        events = batches * 100
        hz = os.sysconf("SC_CLK_TCK")
        per_event = [(b - a) / hz / events * 1e6 for a, b in zip(ticks0, ticks1, strict=True)]
        return Run(setup, processor, workers, batches, round(seconds, 2),
                   round(events / seconds), *(round(x, 1) for x in per_event),
                   load_before)  # fmt: skip
    finally:
        project.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--setups", nargs="+", default=list(SETUPS), choices=list(SETUPS))
    parser.add_argument("--workers", nargs="+", type=int, default=[1, 2, 4])
    parser.add_argument("--processors", nargs="+", default=["storage", "none"])
    parser.add_argument("--batches", type=int, default=300, help="100-event batches queued")
    parser.add_argument("--json", type=Path, help="append each run as a JSON line here")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="py-spy record --gil every cluster process into DIR; summarise"
                             " with python -m bench.profile DIR/*.txt")  # fmt: skip
    args = parser.parse_args()
    print("| setup | processor | workers | drain s | events/s | cluster µs/event |"
          " PostgreSQL µs/event | Redis µs/event | load before |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for setup in args.setups:
        for workers in args.workers:
            for processor in args.processors:
                run = drain(setup, processor, workers, args.batches, args.profile)
                print(f"| {run.setup} | {run.processor} | {run.workers} | {run.seconds} |"
                      f" {run.events_per_s:,} | {run.cluster_us_per_event} |"
                      f" {run.database_us_per_event} | {run.redis_us_per_event} |"
                      f" {run.load_before:.1f} |", flush=True)  # fmt: skip
                if args.json:
                    with args.json.open("a") as fh:
                        fh.write(json.dumps(asdict(run)) + "\n")


if __name__ == "__main__":
    main()
