"""A database made before the queue became the broker app (processing's
migrations up to 0004, every other app at its latest) holds what a running
installation leaves behind: batches waiting, batches claimed by a cluster that
died, dead letters, the event ids taken. Migrated forward to the broker app and
served by a real cluster, each batch is counted exactly once, the dead letters
replay, and the event ids still refuse their repeats (on the pass's database)."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import BASE_CONFIG, event
from tests.support.databases import fresh_database_url
from tests.support.dbread import dead_letters, processed_batches, rows, wait_queue_empty
from tests.support.procs import ROOT, Project
from tests.support.traffic import wait_for_totals

pytestmark = pytest.mark.integration

# Run in the installation's environment: migrate to the state before the move with
# Django's MigrationExecutor, then write the rows as that code wrote them, through
# the models of that state (a batch task is the signed package its commit wrote).
_BEFORE_THE_MOVE = """
import json, subprocess, time, uuid
import django
django.setup()
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone
from django_q.signing import SignedPackage
from broker.leases import host_id
from plugins.base import batch_id_new

executor = MigrationExecutor(connection)
graph = executor.loader.graph
targets = [n for n in graph.leaf_nodes() if n[0] not in ("broker", "processing")]
targets.append(("processing", "0004_seen_message"))
executor.migrate(targets)
state = MigrationExecutor(connection).loader.project_state(targets)
model = lambda name: state.apps.get_model("processing", name)

def event(source, type="Click", **extra):
    return {"sourceId": source, "type": type, "timestamp": "2026-11-30T10:00:00Z", **extra}

def package(batch_id, events):
    task = {"id": uuid.uuid4().hex, "name": batch_id, "func": "processing.tasks.process_batch",
            "args": (batch_id, json.dumps(events), time.time()), "kwargs": {},
            "started": timezone.now()}
    return SignedPackage.dumps(task)

gone = subprocess.Popen(["true"]); gone.wait()  # the dead cluster's sentinel
now = time.time()
model("ClusterLease").objects.create(
    cluster_id="cluster-gone", queue="telemetron", host=host_id(), pid=gone.pid, pid_start=1,
    heartbeat=now - 1, fresh_since=now - 600, stat="", stat_expires=0)
facts = {"waiting": {}, "claimed": {}}
for source in range(1, 6):
    batch_id = batch_id_new()
    payload = package(batch_id, [event(source)] * 10)
    model("QueuedTask").objects.create(queue="telemetron", payload=payload)
    facts["waiting"][batch_id] = 10
for source in (6, 7):
    batch_id = batch_id_new()
    model("QueuedTask").objects.create(
        queue="telemetron", payload=package(batch_id, [event(source)] * 7),
        owner="cluster-gone", claimed_until=now + 3600, deliveries=1)
    facts["claimed"][batch_id] = 7
letter = model("DeadLetter").objects.create(
    batch_id=batch_id_new(), plugin="StorageProcessor", events=[event(8)] * 4,
    error_class="OperationalError", error_message="database is locked", attempts=3)
facts["dead_letter"] = letter.pk
for message_id in ("seen-1", "seen-2"):
    model("SeenMessage").objects.create(source_id=9, message_id=message_id, seen_at=now)
print(json.dumps(facts))
"""


def _before_the_move(project: Project) -> dict[str, Any]:
    project.write()
    env = {**project.env(), "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", _BEFORE_THE_MOVE],
        cwd=project.workdir, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    facts: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return facts


def _applied(project: Project, app: str) -> list[str]:
    found = rows(
        project.database_url, f"SELECT name FROM django_migrations WHERE app = '{app}' ORDER BY id"
    )
    return [name for (name,) in found]


def test_a_database_of_before_the_move_is_served_exactly_once(tmp_path: Path) -> None:
    with fresh_database_url(tmp_path) as url:
        project = Project(workdir=tmp_path, database_url=url, config=copy.deepcopy(BASE_CONFIG))
        try:
            _served_exactly_once(project)
        finally:
            project.stop_all()


def _served_exactly_once(project: Project) -> None:
    facts = _before_the_move(project)
    assert _applied(project, "processing")[-1] == "0004_seen_message"
    assert _applied(project, "broker") == []
    letters_before = dead_letters(project.database_url)

    project.migrate()  # forward: the queue's models now the broker app's, tables kept
    assert _applied(project, "broker") == [  # rows kept
        "0001_initial",
        "0002_queuedtask_holder",
        "0003_commitmarker",
        "0004_queuedtask_claim_token",
    ]
    assert _applied(project, "processing")[-1] == "0005_queue_moved_to_broker"
    assert rows(project.database_url, "SELECT COUNT(*) FROM processing_queuedtask") == [(7,)]

    server = project.start()
    wait_queue_empty(project.database_url, timeout=120)
    batches = {**facts["waiting"], **facts["claimed"]}
    assert processed_batches(project.database_url) == batches  # each once, whole
    with server.client() as client:
        wait_for_totals(client, events=64)
        assert client.get("/stats").json() == {"sources_count": 7, "events_count": 64}
        assert [client.get(f"/stats/{s}").json()["total_events"] for s in (1, 6, 7)] == [10, 7, 7]
        # The event ids taken before the move still refuse their repeats.
        repeat = [event(9, id="seen-1"), event(9, id="seen-2"), event(9, id="fresh-1")]
        assert client.post("/ingest/batch", json=repeat).status_code == 202
        wait_for_totals(client, events=65)
        assert client.get("/stats").json() == {"sources_count": 8, "events_count": 65}

        # The dead letter is as it was, and replays into the stats once.
        assert dead_letters(project.database_url) == letters_before
        project.manage("dlq", "replay", str(facts["dead_letter"]), "--noinput")
        assert client.get("/stats").json() == {"sources_count": 9, "events_count": 69}
        assert client.get("/stats/8").json()["total_events"] == 4
