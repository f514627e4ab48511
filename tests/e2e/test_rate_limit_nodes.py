"""``ingest.rate_limit = "redis"``: two nodes (two ``serve --web-only`` trees on
one database) share each source's bucket in a real Redis, so the events they
accept together stay within rate x window + burst; nothing of a 429 is taken."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import redis

from tests.conftest import event
from tests.support.procs import Project
from tests.support.prom import parse_exposition

pytestmark = pytest.mark.e2e

REDIS_URL = "redis://127.0.0.1:6379/0"
RATE, BURST = 20.0, 20
WINDOW_S = 3.0


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
