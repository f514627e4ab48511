"""Rate limits under real processes. ``ingest.rate_limit = "node"``: every web
worker of a tree SIGKILLed at once (one may hold the buckets' lock) is respawned
and the buckets go on where they were (no deadlock, no refill for free).
``"redis"``: two nodes (two ``serve --web-only`` trees on one database) share each
source's bucket in a real Redis, so the events they accept together stay within
rate x window + burst."""

from __future__ import annotations

import os
import signal
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import redis

from tests.conftest import event
from tests.support.procs import Project, wait_until
from tests.support.prom import parse_exposition

pytestmark = pytest.mark.e2e

REDIS_URL = "redis://127.0.0.1:6379/0"
RATE, BURST = 20.0, 20
WINDOW_S = 3.0
SLOW = 0.1  # events/s of the node test's source: ~no refill while workers respawn


def _web_workers(root: int) -> set[int]:
    """granian's worker processes in ``root``'s tree (children of granian's main)."""
    parents: dict[int, int] = {}
    commands: dict[int, bytes] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            commands[int(entry.name)] = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])

    def in_tree(pid: int) -> bool:
        while pid in parents and pid != root:
            pid = parents[pid]
        return pid == root

    def granian(pid: int) -> bool:
        return b"granian" in commands.get(pid, b"")

    return {p for p in parents if in_tree(p) and granian(p) and granian(parents[p])}


def test_node_buckets_survive_every_web_worker_killed_at_once(project: Project) -> None:
    project.config["http"] = {**project.config["http"], "workers": 2}
    project.manage("sources", "create", "6", "--name", "slow", "--rate", str(SLOW), "--burst", "10")
    server = project.start("--web-only")
    with server.client() as client:
        codes: list[int] = []
        while len(codes) < 30 and 429 not in codes:
            codes.append(client.post("/ingest", json=event(6)).status_code)
        assert codes[:10] == [202] * 10 and codes[-1] == 429
        emptied = time.monotonic()
        workers = wait_until(lambda: len(w := _web_workers(server.process.pid)) == 2 and w)
        for pid in workers:
            os.kill(pid, signal.SIGKILL)
        respawned = wait_until(
            lambda: (
                (w := _web_workers(server.process.pid)) and not (w & workers) and len(w) == 2 and w
            ),
            timeout=60,
        )
        assert respawned

    def serving() -> bool:
        try:
            return httpx.get(f"{server.url}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(serving, timeout=60)
    with server.client() as client:  # a new connection: the new workers
        codes = [client.post("/ingest", json=event(6)).status_code for _ in range(10)]
    refilled = SLOW * (time.monotonic() - emptied) + 1
    assert set(codes) <= {202, 429}
    assert codes.count(202) <= refilled < 10, (codes, refilled)  # not a fresh, full bucket
    assert server.stop() == 0


def test_two_nodes_share_a_sources_rate_limit_through_redis(project: Project) -> None:
    queue = f"telemetron-rl-{uuid.uuid4().hex[:12]}"  # the buckets' key prefix too
    project.config["queue"] = {**project.config["queue"], "name": queue, "redis_url": REDIS_URL}
    project.config["ingest"] = {
        **project.config["ingest"],
        "auth": "required",
        "rate_limit": "redis",
    }
    out = project.manage(
        "sources", "create", "5", "--name", "busy", "--rate", str(RATE), "--burst", str(BURST)
    ).stdout
    key = next(w for w in out.split() if w.startswith("tlw_"))
    nodes = [project.start("--web-only"), project.start("--web-only")]
    client = redis.Redis.from_url(REDIS_URL)
    try:
        deadline = time.monotonic() + WINDOW_S

        def blast(i: int) -> list[int]:
            codes = []
            with httpx.Client(base_url=nodes[i % 2].url, timeout=30) as http:
                while time.monotonic() < deadline and len(codes) < 400:
                    codes.append(http.post("/ingest", json=event(5), auth=(key, "")).status_code)
            return codes

        start = time.monotonic()
        with ThreadPoolExecutor(max_workers=6) as pool:
            codes = [c for cs in pool.map(blast, range(6)) for c in cs]
        window = time.monotonic() - start
        accepted = codes.count(202)
        print(f"{len(codes)} requests to 2 nodes in {window:.2f} s: {accepted} accepted")
        assert set(codes) == {202, 429}
        assert BURST <= accepted <= RATE * window + BURST
        # the nodes agree: together they acknowledged exactly those events
        acked = sum(
            parse_exposition(httpx.get(f"{n.url}/metrics", timeout=30).text).value(
                "telemetron_events_accepted_total"
            )
            for n in nodes
        )
        assert acked == accepted
    finally:
        for key_name in client.scan_iter(f"{queue}:*"):
            client.delete(key_name)
        client.close()
