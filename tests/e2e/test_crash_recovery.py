"""SIGKILL of the whole `manage.py serve` tree (serve, granian and its workers,
the cluster's sentinel, pusher, monitor and workers, all at once) under load,
then a restart on the same database: every acknowledged event is counted within
10 s of the restart, none twice. On the embedded default (SQLite, or
PostgreSQL in that pass, with the ORM broker) and with the Redis broker.

The batches the dead cluster had claimed are handed out again at once: the new
cluster's first heartbeat finds the old one's sentinel gone (broker/leases.py),
instead of waiting queue.retry (360 s)."""

from __future__ import annotations

import time

import pytest

from tests.support.databases import BROKERS
from tests.support.load import Load, LoadResult
from tests.support.procs import Project, kill_tree, wait_until
from tests.support.queues import QueueView, broker_config

pytestmark = pytest.mark.e2e

RECOVERY_LIMIT_S = 10.0  # the promise: counted within 10 s of the restart


def _counted(server_url: str) -> int:
    import httpx

    return int(httpx.get(f"{server_url}/stats", timeout=10).json()["events_count"])


def _per_source(server_url: str, sources: set[int]) -> dict[int, int]:
    import httpx

    with httpx.Client(base_url=server_url, timeout=10) as client:
        found = {}
        for sid in sorted(sources):
            response = client.get(f"/stats/{sid}")
            found[sid] = response.json()["total_events"] if response.status_code == 200 else 0
        return found


def _assert_counted_once(result: LoadResult, per_source: dict[int, int]) -> None:
    """Each source counted every event answered 202, and nothing beyond the
    events of requests that got no answer (those may or may not have been
    committed when the tree died): nothing lost, nothing counted twice."""
    for sid, counted in per_source.items():
        low, high = result.accepted[sid], result.accepted[sid] + result.unanswered[sid]
        assert low <= counted <= high, (sid, counted, low, high)


@pytest.mark.parametrize("broker", BROKERS)
def test_whole_tree_sigkill_under_load_then_restart(project: Project, broker: str) -> None:
    with broker_config(broker) as queue:
        project.config["queue"].update(queue)
        view = QueueView(project.database_url, project.config["queue"])
        server = project.start()
        load = Load([server.url], threads=4, requests=120, batch=50, sources=100).start()
        # Mid-load: batches acknowledged, some counted, some claimed by the cluster.
        wait_until(lambda: _counted(server.url) > 0, timeout=60)
        try:
            killed = kill_tree(server.process.pid, when=lambda: sum(view.claims().values()) > 0)
        except TimeoutError:
            raise AssertionError(f"no batch ever claimed:\n{server.log()}") from None
        assert len(killed) >= 6, killed  # serve, granian + worker, qcluster, sentinel, ...
        claimed_at_kill = view.claims()
        server.process.wait(10)
        result = load.stop()
        assert result.accepted_events > 0, result.statuses

        restarted = project.start()
        ready = time.monotonic()
        wait_until(
            lambda: _counted(restarted.url) >= result.accepted_events,
            timeout=RECOVERY_LIMIT_S,
            interval=0.1,
        )
        recovery_s = time.monotonic() - ready
        view.wait_empty()
        per_source = _per_source(restarted.url, set(result.accepted) | set(result.unanswered))
        _assert_counted_once(result, per_source)
        assert _counted(restarted.url) == sum(per_source.values())
        print(
            f"{broker}: {result.accepted_events} events acknowledged, claims at the kill"
            f" {claimed_at_kill}, all counted {recovery_s:.1f} s after the restart"
        )
