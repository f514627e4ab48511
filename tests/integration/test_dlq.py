"""The dead-letter queue end to end, on a real installation (serve + a real
django-q2 cluster) and the real ``manage.py dlq`` command: a storage outage
dead-letters a batch (bisected into parts), ``list`` shows it, ``replay
--dry-run`` changes nothing, the outage ends, ``replay`` restores exact stats,
and replaying again does nothing; two replays at once replay each entry once."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import BASE_CONFIG, event
from tests.support.dbread import dead_letters, rows, wait_queue_empty
from tests.support.installations import installed_project
from tests.support.procs import ROOT, Project, Server, wait_until

pytestmark = pytest.mark.integration

STORAGE = "HealableStorageProcessor"
WEBHOOK = "FailingProcessor"
EVENTS = [event(source_id=1 + i % 2, type="Click", ts=f"2024-03-01T12:00:0{i}Z") for i in range(6)]


@pytest.fixture(scope="module")
def outage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One batch of 6 events that both plugins fail on (an outage each)."""
    workdir = tmp_path_factory.mktemp("dlq")
    config = copy.deepcopy(BASE_CONFIG)
    del config["processing.plugins.StorageProcessor"]
    config["processor"].update(retry_attempts=2, retry_delay=20)
    config[f"processing.plugins.{WEBHOOK}"] = {
        "message": "webhook down",
        "healed_flag": str(workdir / "webhook-healed"),
        "success_seconds": 0.2,  # once healed, slow enough for two replays to overlap
    }
    config[f"processing.plugins.{STORAGE}"] = {"healed_flag": str(workdir / "storage-healed")}
    with installed_project(workdir, config) as proj:
        server = proj.start()
        with server.client() as client:
            response = client.post("/ingest/batch", json=EVENTS)
            assert response.status_code == 202 and response.json()["accepted"] == 6
        wait_queue_empty(proj.database_url)

        def all_dead_lettered() -> bool:
            letters = dead_letters(proj.database_url)
            held = {p: sum(len(x["events"]) for x in letters if x["plugin"] == p) for p in (
                STORAGE, WEBHOOK)}  # fmt: skip
            return held == {STORAGE: 6, WEBHOOK: 6}

        wait_until(all_dead_lettered, timeout=60)
        yield {"project": proj, "server": server, "workdir": workdir}


def dlq(proj: Project, *args: str) -> subprocess.CompletedProcess[str]:
    return proj.manage("dlq", *args, check=False)


def entries(proj: Project, plugin: str) -> list[dict[str, Any]]:
    """The plugin's entries as the database holds them (no command run)."""
    columns = ("id", "status", "replay_count", "attempts", "claimed_by")
    found = rows(
        proj.database_url,
        f"SELECT {', '.join(columns)} FROM processing_deadletter"
        f" WHERE plugin = '{plugin}' ORDER BY id",
    )
    return [dict(zip(columns, row, strict=True)) for row in found]


def stats(server: Server) -> dict[str, Any]:
    with server.client() as client:
        return dict(client.get("/stats").json())


def test_outage_then_fix_then_replay_gives_exact_stats(outage: dict[str, Any]) -> None:
    proj, server = outage["project"], outage["server"]
    listed = dlq(proj, "list", "--plugin", STORAGE, "--json", "--limit", "0")
    assert listed.returncode == 0, listed.stderr
    pending = json.loads(listed.stdout)
    # The batch was bisected: every event is held once, in parts with split counts.
    assert sum(e["events"] for e in pending) == 6
    assert len(pending) > 1 and all(e["splits"] >= 1 for e in pending)
    assert {e["status"] for e in pending} == {"pending"}
    assert {e["error_message"] for e in pending} == {"stats storage unavailable (not healed yet)"}
    table = dlq(proj, "list").stdout
    assert STORAGE in table and WEBHOOK in table and "pending" in table
    assert stats(server)["events_count"] == 0

    before = entries(proj, STORAGE)
    dry = dlq(proj, "replay", "--plugin", STORAGE, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines() == [
        f"Would replay {len(pending)} entries (6 events) for {STORAGE}.",
        "Dry run: nothing was changed.",
    ]
    assert entries(proj, STORAGE) == before
    assert stats(server)["events_count"] == 0

    (outage["workdir"] / "storage-healed").touch()  # the fix
    fixed = dlq(proj, "replay", "--plugin", STORAGE, "--noinput")
    assert fixed.returncode == 0, fixed.stderr
    assert fixed.stdout.splitlines()[-1] == f"replayed {len(pending)}, failed 0, skipped 0"
    assert stats(server) == {"sources_count": 2, "events_count": 6}
    with server.client() as client:
        assert client.get("/stats/1").json()["total_events"] == 3
    assert {(e["status"], e["replay_count"]) for e in entries(proj, STORAGE)} == {("replayed", 1)}

    again = dlq(proj, "replay", "--plugin", STORAGE, "--noinput")
    assert again.returncode == 0
    assert again.stdout.splitlines()[-1] == "replayed 0, failed 0, skipped 0"
    assert stats(server) == {"sources_count": 2, "events_count": 6}
    assert {(e["status"], e["replay_count"]) for e in entries(proj, STORAGE)} == {("replayed", 1)}


def test_two_replay_commands_at_once_replay_each_entry_once(outage: dict[str, Any]) -> None:
    proj = outage["project"]
    pending = entries(proj, WEBHOOK)
    assert len(pending) > 1 and {e["status"] for e in pending} == {"pending"}
    (outage["workdir"] / "webhook-healed").touch()
    proj.write()
    command = [sys.executable, str(ROOT / "manage.py"), "dlq", "replay", "--plugin", WEBHOOK]
    procs = [
        subprocess.Popen(
            [*command, "--noinput", "--json"],
            cwd=proj.workdir,
            env=proj.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    reports = [json.loads(out) for out, _ in outputs]
    assert sum(r["replayed"] for r in reports) == len(pending)
    after = entries(proj, WEBHOOK)
    assert {(e["status"], e["replay_count"], e["claimed_by"]) for e in after} == {
        ("replayed", 1, "")
    }


def test_dlq_log_names_every_dead_letter_and_bisection(outage: dict[str, Any]) -> None:
    log = outage["server"].log()
    total = len(dead_letters(outage["project"].database_url))
    assert log.count("dead-lettered batch") == total
    assert f"for plugin {STORAGE}:" in log and f"for plugin {WEBHOOK}:" in log
