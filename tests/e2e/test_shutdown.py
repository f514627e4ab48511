"""SIGTERM to `manage.py serve`: exit code 0 and no accepted event lost, in both
acknowledgement modes. The stats are read after a restart on the same database."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.conftest import event
from tests.support.databases import BROKERS
from tests.support.dbread import wait_queue_empty
from tests.support.procs import Project, Server, children_of, descendants, wait_until
from tests.support.queues import QueueView, broker_config
from tests.support.traffic import wait_for_totals

pytestmark = pytest.mark.e2e


def _restart_and_count(project: Project, accepted: int) -> None:
    """Start serve again on the same database; every accepted event is counted, once."""
    server = project.start()
    with server.client() as client:
        wait_for_totals(client, events=accepted)
        wait_queue_empty(project.database_url)
        assert client.get("/stats").json()["events_count"] == accepted


def test_sigterm_under_load_loses_no_durable_event(project: Project) -> None:
    server = project.start()
    accepted = Counter[str]()
    outcomes = Counter[str]()
    lock = threading.Lock()
    stop_sending = threading.Event()

    def client_loop(n: int) -> None:
        """Send single events, or batches of 5, until the server stops answering
        (bounded: at most 400 requests, 60 s)."""
        deadline = time.monotonic() + 60
        with httpx.Client(base_url=server.url, timeout=30) as client:
            for i in range(400):
                if stop_sending.is_set() or time.monotonic() > deadline:
                    return
                try:
                    if n % 2:
                        r = client.post("/ingest/batch", json=[event(source_id=n)] * 5)
                        got = r.json().get("accepted", 0) if r.status_code == 202 else 0
                    else:
                        r = client.post("/ingest", json=event(source_id=n, data=i))
                        got = 1 if r.status_code == 202 else 0
                except httpx.TransportError:
                    with lock:
                        outcomes["transport error"] += 1
                    return  # the server is gone
                with lock:
                    accepted["events"] += got
                    outcomes[str(r.status_code)] += 1
                if r.status_code != 202:
                    return

    threads = [threading.Thread(target=client_loop, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: accepted["events"] >= 300, timeout=60)
        server.process.send_signal(signal.SIGTERM)  # while the clients keep sending
        code = server.process.wait(60)
    finally:
        stop_sending.set()
        for t in threads:
            t.join(60)

    assert code == 0, server.log()
    assert "telemetron: stopped" in server.log()
    assert accepted["events"] >= 300, outcomes
    _restart_and_count(project, accepted["events"])


def test_sigterm_flushes_the_buffered_events(project: Project) -> None:
    """Buffered acks: 202 as soon as the event is in the web process's buffer.
    The buffer cannot flush by size or time here; SIGTERM must flush it."""
    capacity = 25
    project.config["ingest"].update(ack="buffered")
    project.config["processor"].update(
        batch_size=100, batch_timeout=600_000, channel_capacity=capacity
    )
    server = project.start()

    with server.client() as client:
        for i in range(capacity):
            r = client.post("/ingest", json=event(source_id=1 + i % 3, data=i))
            assert (r.status_code, r.json()) == (202, {"status": "accepted"})

        # A full buffer answers 503 with Retry-After (README, "The HTTP API"), for both endpoints.
        full = client.post("/ingest", json=event())
        assert full.status_code == 503
        assert full.headers["Retry-After"] == "1"
        assert "full" in full.json()["error"]
        full_batch = client.post("/ingest/batch", json=[event(), event()])
        assert full_batch.status_code == 503
        assert full_batch.headers["Retry-After"] == "1"

        # Nothing has left the buffer yet.
        assert client.get("/stats").json() == {"sources_count": 0, "events_count": 0}

    assert server.stop(signal.SIGTERM) == 0, server.log()
    assert "buffered events not committed" not in server.log()
    _restart_and_count(project, capacity)


def test_sigterm_while_a_respawned_web_worker_starts_stops_serve_at_once(project: Project) -> None:
    """granian forks a new worker for one that died; until the worker has loaded the
    application, a SIGTERM to it is lost (ops/process_tree.py asks it again) and
    serve's shutdown would wait for it until its deadline (60 s), then kill it.
    SIGTERM right after the respawn: serve stops within seconds, exit 0."""
    project.config["http"] = {**project.config["http"], "workers": 2}
    server = project.start("--web-only")
    granian = wait_until(lambda: children_of(server.process.pid))
    assert len(granian) == 1
    (main,) = granian
    workers = wait_until(lambda: len(w := children_of(main)) == 2 and w)
    os.kill(min(workers), signal.SIGKILL)
    wait_until(lambda: children_of(main) - workers, timeout=30, interval=0.005)
    asked = time.monotonic()
    assert server.stop(timeout=40) == 0  # the deadline is 60 s: a lost signal fails
    print(f"serve stopped {time.monotonic() - asked:.2f} s after SIGTERM")


# What a quiet start and stop never print:
NOISE = (
    "is gone: its batches are handed out again",  # a clean stop taken for a crash
    "refused to gracefully stop",  # granian's kill of a worker that had exited
    "Configuration allows spawning up to",  # granian's threads rule of thumb
    "Traceback",
)


def _stop_impatiently(server: Server) -> int:
    """SIGTERM, again while serve stops, and a third time as it exits."""
    server.process.send_signal(signal.SIGTERM)
    wait_until(lambda: "shutting down" in server.log(), timeout=30, interval=0.005)
    server.process.send_signal(signal.SIGTERM)
    wait_until(lambda: "telemetron: stopped" in server.log(), timeout=90, interval=0.005)
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)  # while it exits
    return server.process.wait(60)


@pytest.mark.parametrize("broker", BROKERS)
def test_stops_and_starts_are_quiet(project: Project, broker: str) -> None:
    """SIGTERM, start again, then SIGTERM three times: the stopped cluster gave
    its lease up (no "cluster ... is gone" at the next start), the second and
    third SIGTERM change nothing (exit 0, no worker killed, no process left), and
    neither start prints granian's thread warning."""
    project.config["http"] = {**project.config["http"], "workers": 2}
    with broker_config(broker) as queue:
        project.config["queue"] = {**project.config["queue"], **queue}
        view = QueueView(project.database_url, queue)
        first = project.start()
        wait_until(view.clusters, timeout=60)  # its cluster's lease is there
        assert first.stop(signal.SIGTERM) == 0, first.log()
        assert view.clusters() == []  # given up by its last heartbeat, not left to expire
        second = project.start()
        with second.client() as client:
            assert client.post("/ingest/batch", json=[event(source_id=1)] * 50).status_code == 202
            wait_for_totals(client, events=50)
        wait_until(view.clusters, timeout=60)
        time.sleep(1.5)  # more heartbeats: this host's leases are looked at once a second
        tree = descendants(second.process.pid)
        assert _stop_impatiently(second) == 0, second.log()
    for log in (first.log(), second.log()):
        found = [line for line in log.splitlines() if any(n in line for n in NOISE)]
        assert not found, log
    assert second.log().count("shutting down") == 1
    wait_until(lambda: not any(Path(f"/proc/{pid}").exists() for pid in tree), timeout=10)
