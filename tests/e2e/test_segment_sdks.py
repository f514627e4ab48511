"""The Segment tracking API against one real ``manage.py serve`` (two web workers
and a cluster), with the real SDKs as clients: segment-analytics-python (its
clock shifted 2 h ahead), rudder-sdk-python and @segment/analytics-node (run by
Node.js from tests/e2e/segment_node, installed there by ``npm ci``). Each sends a
few hundred track calls and some identify/page calls and flushes; /stats shows
the exact counts by event name and the clock-corrected first/last times.

Retries cannot double count: a proxy that drops the answer of a request the
server committed (the connection closes after the commit) makes the SDK send
the batch again; the counts stay exact and telemetron_events_deduplicated_total
grows by the retried messages. The same through /ingest/batch with ``id`` and a
plain retry; and one message id posted from many threads at once to both web
workers is counted once. Everything runs on the ORM broker and on Redis."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import BASE_CONFIG
from tests.support.cutproxy import CutProxy, batch_messages, cut_proxy
from tests.support.databases import BROKERS
from tests.support.installations import installed_project
from tests.support.procs import Project, Server, wait_until
from tests.support.prom import parse_exposition
from tests.support.queues import broker_config

pytestmark = pytest.mark.e2e

KEY = re.compile(r"tlw_[A-Za-z0-9_-]{40}")
NODE_DIR = Path(__file__).parent / "segment_node"
DEDUPLICATED = "telemetron_events_deduplicated_total"
TRACKS, IDENTIFIES, PAGES = 300, 25, 15
NAMES = ("Viewed", "Added", "Bought")
SOURCES = {
    "segment": 1,
    "rudder": 2,
    "node": 3,
    "segment-retry": 4,
    "node-retry": 5,
    "native-retry": 6,
    "concurrent": 7,
}


@dataclass
class Served:
    project: Project
    server: Server
    keys: dict[str, str]

    def stats(self, source_id: int) -> dict[str, Any] | None:
        r = httpx.get(f"{self.server.url}/stats/{source_id}", timeout=30)
        return r.json() if r.status_code == 200 else None

    def deduplicated(self) -> float:
        text = httpx.get(f"{self.server.url}/metrics", timeout=30).text
        exposition = parse_exposition(text)
        return exposition.value(DEDUPLICATED) if exposition.has(DEDUPLICATED) else 0.0

    def counted(self, source_id: int, total: int) -> dict[str, Any]:
        """The source's stats once ``total`` events are counted (and no more after)."""
        out = wait_until(
            lambda: (s := self.stats(source_id)) and s["total_events"] >= total and s,
            timeout=90,
        )
        time.sleep(1.0)  # anything counted twice would be in by now
        final = self.stats(source_id)
        assert final is not None
        assert final["total_events"] == out["total_events"]
        return final


@pytest.fixture(scope="module", params=BROKERS)
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """One serve per broker: the dedup record is the ORM broker's transaction or
    the Redis broker's script."""
    config = copy.deepcopy(BASE_CONFIG)
    config["http"]["workers"] = 2
    with (
        broker_config(request.param) as queue,
        installed_project(tmp_path_factory.mktemp("segment"), config) as project,
    ):
        project.config["queue"] = {**project.config["queue"], **queue}
        keys = {}
        for name, source_id in SOURCES.items():
            out = project.manage("sources", "create", str(source_id), "--name", name).stdout
            [keys[name]] = KEY.findall(out)
        yield Served(project, project.start(), keys)


def expected_types(tracks: int = TRACKS) -> dict[str, int]:
    types = {name: len(range(i, tracks, 3)) for i, name in enumerate(NAMES)}
    return {**types, "identify": IDENTIFIES, "page": PAGES}


def python_calls(client: Any) -> None:
    for i in range(TRACKS):
        client.track(user_id=f"u{i % 7}", event=NAMES[i % 3], properties={"i": i})
    for i in range(IDENTIFIES):
        client.identify(user_id=f"u{i}", traits={"plan": "pro"})
    for i in range(PAGES):
        client.page(anonymous_id=f"a{i}", name="Home", properties={"path": "/"})


def run_node(served: Served, host: str, key: str, *, timeout_ms: int = 10000) -> dict[str, Any]:
    node = shutil.which("node")
    assert node, "Node.js is needed for the @segment/analytics-node test"
    assert (NODE_DIR / "node_modules" / "@segment" / "analytics-node").is_dir(), (
        "run `npm ci` in tests/e2e/segment_node (make .venv/.installed-dev does)"
    )
    env = {
        **os.environ,
        "HOST": host,
        "WRITE_KEY": key,
        "TRACKS": str(TRACKS),
        "IDENTIFIES": str(IDENTIFIES),
        "PAGES": str(PAGES),
        "FLUSH_AT": "20",
        "TIMEOUT_MS": str(timeout_ms),
    }
    done = subprocess.run(
        [node, "send.mjs"], cwd=NODE_DIR, env=env, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


class _Shifted(datetime):
    """The SDK's clock, 2 h fast."""

    @classmethod
    def now(cls, tz: Any = None) -> Any:
        return cls.fromtimestamp(time.time() + 2 * 3600, tz)


def test_segment_python_with_its_clock_shifted(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    from segment.analytics import client as segment_client
    from segment.analytics import request as segment_request
    from segment.analytics.client import Client

    monkeypatch.setattr(segment_client, "datetime", _Shifted)
    monkeypatch.setattr(segment_request, "datetime", _Shifted)
    errors: list[Any] = []
    started = datetime.now(UTC)
    client = Client(
        served.keys["segment"],
        host=served.server.url,
        gzip=True,
        upload_size=50,
        on_error=lambda e, batch: errors.append(e),
    )
    python_calls(client)
    client.flush()
    client.shutdown()
    ended = datetime.now(UTC)
    assert not errors
    stats = served.counted(SOURCES["segment"], TRACKS + IDENTIFIES + PAGES)
    assert stats["event_types"] == expected_types()
    first = datetime.fromisoformat(stats["first_event"])
    last = datetime.fromisoformat(stats["last_event"])
    # Corrected to the server's clock: within the run, not 2 h ahead.
    slack = timedelta(seconds=2)
    assert started - slack <= first <= last <= ended + slack, (started, first, last, ended)


def test_rudder_python(served: Served) -> None:
    from rudderstack.analytics.client import Client

    errors: list[Any] = []
    started = datetime.now(UTC)
    client = Client(
        served.keys["rudder"],
        host=served.server.url,
        upload_size=40,
        on_error=lambda e, batch: errors.append(e),
    )
    python_calls(client)
    client.flush()
    client.join()
    ended = datetime.now(UTC)
    assert not errors
    stats = served.counted(SOURCES["rudder"], TRACKS + IDENTIFIES + PAGES)
    assert stats["event_types"] == expected_types()
    first = datetime.fromisoformat(stats["first_event"])
    last = datetime.fromisoformat(stats["last_event"])
    slack = timedelta(seconds=2)
    assert started - slack <= first <= last <= ended + slack


def test_segment_node(served: Served) -> None:
    started = datetime.now(UTC)
    result = run_node(served, served.server.url, served.keys["node"])
    ended = datetime.now(UTC)
    assert result == {"ok": TRACKS + IDENTIFIES + PAGES, "failed": 0, "errors": []}
    stats = served.counted(SOURCES["node"], TRACKS + IDENTIFIES + PAGES)
    assert stats["event_types"] == expected_types()
    first = datetime.fromisoformat(stats["first_event"])
    last = datetime.fromisoformat(stats["last_event"])
    slack = timedelta(seconds=2)
    assert started - slack <= first <= last <= ended + slack


def _cut_messages(proxy: CutProxy) -> int:
    assert proxy.cut_answers and all(status == 200 for status in proxy.cut_answers)
    return sum(batch_messages(body) for body in proxy.cut_bodies)


def test_segment_python_retries_a_committed_batch_once_counted(served: Served) -> None:
    from segment.analytics.client import Client

    before = served.deduplicated()
    with cut_proxy(served.server.url) as proxy:
        proxy.cut(2)  # the first two batches: committed, their answers lost
        errors: list[Any] = []
        client = Client(
            served.keys["segment-retry"],
            host=proxy.url,
            upload_size=50,
            max_retries=5,
            on_error=lambda e, batch: errors.append(e),
        )
        python_calls(client)
        client.flush()
        client.shutdown()
    assert not errors
    retried = _cut_messages(proxy)
    stats = served.counted(SOURCES["segment-retry"], TRACKS + IDENTIFIES + PAGES)
    assert stats["event_types"] == expected_types()
    assert retried >= 2
    wait_until(lambda: served.deduplicated() - before >= retried, timeout=10)
    assert served.deduplicated() - before == retried


def test_segment_node_retries_a_committed_batch_once_counted(served: Served) -> None:
    before = served.deduplicated()
    with cut_proxy(served.server.url) as proxy:
        proxy.cut(3)
        result = run_node(served, proxy.url, served.keys["node-retry"])
    assert result["failed"] == 0, result
    retried = _cut_messages(proxy)
    stats = served.counted(SOURCES["node-retry"], TRACKS + IDENTIFIES + PAGES)
    assert stats["event_types"] == expected_types()
    wait_until(lambda: served.deduplicated() - before >= retried, timeout=10)
    assert served.deduplicated() - before == retried


def test_ingest_batch_with_ids_and_a_plain_retry(served: Served) -> None:
    source = SOURCES["native-retry"]
    events = [
        {
            "sourceId": source,
            "type": NAMES[i % 3],
            "timestamp": "2026-11-20T10:00:00Z",
            "id": f"ev-{i}",
        }
        for i in range(150)
    ]
    before = served.deduplicated()
    with cut_proxy(served.server.url) as proxy:
        proxy.cut(1)
        with httpx.Client(base_url=proxy.url, timeout=30) as client:
            with pytest.raises(httpx.RemoteProtocolError):
                client.post("/ingest/batch", json=events)
            answer = client.post("/ingest/batch", json=events)  # the plain retry
    assert proxy.cut_answers == [202]
    assert answer.status_code == 202
    assert answer.json() == {"accepted": 150, "rejected": []}
    stats = served.counted(source, 150)
    assert stats["event_types"] == {name: 50 for name in NAMES}
    wait_until(lambda: served.deduplicated() - before >= 150, timeout=10)
    assert served.deduplicated() - before == 150


def test_one_message_id_from_many_threads_to_two_web_workers_counts_once(
    served: Served,
) -> None:
    key = served.keys["concurrent"]
    message_ids = [f"same-{uuid.uuid4().hex}" for _ in range(5)]
    start = threading.Barrier(24)
    answers: list[int] = []
    lock = threading.Lock()

    def send(n: int) -> None:
        start.wait()
        for message_id in message_ids:
            # A new connection each time: both web workers take some.
            r = httpx.post(
                f"{served.server.url}/v1/track",
                json={"userId": f"u{n}", "event": "Paid", "messageId": message_id},
                auth=(key, ""),
                timeout=60,
            )
            with lock:
                answers.append(r.status_code)

    before = served.deduplicated()
    threads = [threading.Thread(target=send, args=(n,)) for n in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert answers == [200] * (24 * 5)
    stats = served.counted(SOURCES["concurrent"], 5)
    assert stats["event_types"] == {"Paid": 5}
    wait_until(lambda: served.deduplicated() - before >= 23 * 5, timeout=10)
    assert served.deduplicated() - before == 23 * 5
