"""The multi-node deployment on real processes, for both brokers, as
deploy/multinode/Procfile runs it: two web nodes (`serve --web-only`), two
worker nodes (`manage.py qcluster`, and `serve` kept out of the load balancer),
one PostgreSQL database (and Redis as the broker in one run).

Clients post single events and batches to both web nodes from several threads;
the qcluster node is SIGKILLed (every process of it at once) mid-load, while it
holds claimed batches, and started again. The other worker node takes the dead
node's batches over once its heartbeat is `queue.dead_after` old (the nodes
have host ids of their own, as on separate machines), and in the end both web
nodes' /stats count exactly the events answered 202, per source too.

PostgreSQL pass only: SQLite is one machine's database."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.support.databases import backend
from tests.support.load import Load
from tests.support.multinode import procfile_nodes
from tests.support.procs import Project, Server, kill_tree, wait_until
from tests.support.queues import QueueView, broker_config

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        backend() != "postgresql", reason="nodes share a PostgreSQL database: PostgreSQL pass only"
    ),
]


def test_the_procfile_has_two_web_and_two_worker_nodes() -> None:
    assert procfile_nodes() == {
        "web1": ("serve", ["--web-only"]),
        "web2": ("serve", ["--web-only"]),
        "worker1": ("serve", []),
        "worker2": ("qcluster", []),
    }


def _start(project: Project, node: str, env: dict[str, str] | None = None) -> Server:
    command, options = procfile_nodes()[node]
    return project.start(*options, command=command, env=env)


def _node(name: str) -> dict[str, str]:
    """A worker node's own settings: its host id (separate machines)."""
    return {"TELEMETRON_QUEUE__HOST_ID": name}


def _start_qcluster(project: Project, view: QueueView, name: str) -> Server:
    before = set(view.clusters(host=name))
    node = _start(project, "worker2", env=_node(name))
    wait_until(lambda: set(view.clusters(host=name)) - before, timeout=60)
    return node


def _readyz(url: str) -> dict[str, Any] | None:
    """/readyz's body once it counts both worker clusters, else None."""
    response = httpx.get(f"{url}/readyz", timeout=10)
    body: dict[str, Any] = response.json()
    ok = response.status_code == 200 and body["checks"]["cluster"].get("clusters") == 2
    return body if ok else None


def _stats(url: str) -> dict[str, int]:
    return dict(httpx.get(f"{url}/stats", timeout=10).json())


@pytest.mark.parametrize("broker", ["orm", "redis"])
def test_two_web_and_two_worker_nodes_survive_a_worker_node_kill(
    project: Project, broker: str
) -> None:
    with broker_config(broker) as queue:
        project.config["queue"].update(queue)
        view = QueueView(project.database_url, project.config["queue"])
        webs = [_start(project, "web1"), _start(project, "web2")]
        _start(project, "worker1", env=_node("node-b"))  # serve: cluster + /metrics, off the LB
        wait_until(lambda: view.clusters(host="node-b"), timeout=60)
        node_a = _start_qcluster(project, view, "node-a")
        (cluster_a,) = view.clusters(host="node-a")
        # Every web node sees both worker clusters' heartbeats in /readyz.
        for web in webs:
            ready = wait_until(lambda w=web: _readyz(w.url), timeout=30)
            assert ready["checks"]["cluster"]["clusters"] == 2
            assert ready["checks"]["broker"]["queued"] == 0

        load = Load([w.url for w in webs], threads=6, requests=150, batch=50, sources=200)
        load.start()
        wait_until(lambda: _stats(webs[0].url)["events_count"] > 0, timeout=60)
        kill_tree(node_a.process.pid, when=lambda: view.claims().get(cluster_a, 0) > 0)
        killed_at = time.monotonic()
        held = view.claims().get(cluster_a, 0)
        assert held > 0 and not load.done, "the kill is to land mid-load, on claimed batches"
        node_a.process.wait(10)

        # node-b takes node-a's batches over once its lease is dead_after old.
        wait_until(lambda: view.claims().get(cluster_a, 0) == 0, timeout=60, interval=0.1)
        takeover_s = time.monotonic() - killed_at
        _start_qcluster(project, view, "node-a")

        result = load.join()
        assert result.unanswered == {} and set(result.statuses) == {"202"}, result.statuses
        accepted = result.accepted_events
        for web in webs:
            wait_until(lambda w=web: _stats(w.url)["events_count"] >= accepted, timeout=120)
        view.wait_empty()
        expected = {"sources_count": len(result.accepted), "events_count": accepted}
        assert [_stats(w.url) for w in webs] == [expected, expected]
        with httpx.Client(base_url=webs[1].url, timeout=10) as client:
            per_source = {
                sid: client.get(f"/stats/{sid}").json()["total_events"] for sid in result.accepted
            }
        assert per_source == dict(result.accepted)
        print(
            f"{broker}: {accepted} events in {sum(result.statuses.values())} requests;"
            f" node-a killed holding {held} batches, taken over {takeover_s:.1f} s later"
        )
