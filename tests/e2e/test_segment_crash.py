"""SIGKILL of the whole ``serve`` tree while a real SDK (segment-analytics-python)
sends, then a restart on the same database: the SDK retries what it got no
answer for (which may include a batch committed just before the kill: its
message ids were committed with its events, so the new processes recognise it),
and /stats counts every message exactly once: nothing lost, nothing twice. On
the ORM broker and on Redis."""

from __future__ import annotations

import re
import threading
import time
from typing import Any

import httpx
import pytest

from tests.support.cutproxy import cut_proxy
from tests.support.databases import BROKERS
from tests.support.procs import Project, kill_tree, wait_until
from tests.support.prom import parse_exposition
from tests.support.queues import broker_config

pytestmark = pytest.mark.e2e

KEY = re.compile(r"tlw_[A-Za-z0-9_-]{40}")
SOURCE = 21
MESSAGES = 600


def _total(url: str) -> int:
    try:
        r = httpx.get(f"{url}/stats/{SOURCE}", timeout=10)
    except httpx.HTTPError:
        return -1
    return int(r.json()["total_events"]) if r.status_code == 200 else 0


@pytest.mark.parametrize("broker", BROKERS)
def test_sigkill_mid_load_then_restart_counts_each_message_once(
    project: Project, broker: str
) -> None:
    from segment.analytics.client import Client

    with broker_config(broker) as queue:
        project.config["queue"].update(queue)
        out = project.manage("sources", "create", str(SOURCE), "--name", "app").stdout
        [key] = KEY.findall(out)
        server = project.start()
        with cut_proxy(server.url) as proxy:
            errors: list[Any] = []
            client = Client(
                key,
                host=proxy.url,
                upload_size=20,
                upload_interval=0.05,
                max_retries=12,
                on_error=lambda e, batch: errors.append(e),
            )

            def send() -> None:
                for i in range(MESSAGES):
                    client.track(user_id=f"u{i % 9}", event="Viewed", properties={"i": i})
                    time.sleep(0.004)  # spread over a few seconds: the kill lands mid-load

            sender = threading.Thread(target=send)
            sender.start()
            wait_until(lambda: _total(server.url) >= 60, timeout=60)
            killed = kill_tree(server.process.pid)
            assert len(killed) >= 4, killed
            server.process.wait(10)
            counted_before = proxy.forwarded
            restarted = project.start()
            proxy.retarget(restarted.url)
            sender.join(120)
            client.flush()
            client.shutdown()
        assert not errors, errors
        assert proxy.failed > 0, "no request was in flight or sent while the server was down"
        wait_until(lambda: _total(restarted.url) >= MESSAGES, timeout=60)
        time.sleep(1.0)
        assert _total(restarted.url) == MESSAGES
        metrics = parse_exposition(httpx.get(f"{restarted.url}/metrics", timeout=10).text)
        name = "telemetron_events_deduplicated_total"
        again = metrics.value(name) if metrics.has(name) else 0
        print(
            f"{broker}: {counted_before} requests before the kill, {proxy.failed} unanswered"
            f" while down, {again:.0f} retried messages recognised after the restart,"
            f" {MESSAGES} messages counted once"
        )
