"""Erasure through real processes on both brokers and both databases: events
sent over HTTP to `manage.py serve` are processed into the archive and, for the
poison ones, the dead letters; more are queued while only the web runs
(`--web-only`); then `manage.py privacy erase` (a subprocess, as an operator runs
it) takes one person's events out of all three. A cluster started afterwards
processes the rewritten batches (a package it accepts, signed again): the archive
ends with everybody's events but hers, and the stats keep their counts."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from core.fields import BIAS
from tests.conftest import event
from tests.support.databases import BROKERS
from tests.support.dbread import dead_letters, rows
from tests.support.procs import Project, wait_until
from tests.support.queues import QueueView, broker_config
from tests.support.traffic import wait_for_totals

pytestmark = pytest.mark.e2e


def ev(user: str, n: int, type: str = "Page") -> dict[str, Any]:
    return event(7, type, data={"userId": user, "n": n})


def archived(project: Project) -> list[tuple[str, int]]:
    found = rows(project.database_url, "SELECT data FROM archive_archivedevent")
    data = [json.loads(d) if isinstance(d, str) else d for (d,) in found]
    return sorted((d["userId"], d["n"]) for d in data)


def letters(project: Project) -> list[tuple[str, int]]:
    return sorted(
        (e["data"]["userId"], e["data"]["n"]) for x in dead_letters(project.database_url)
        for e in x["events"]
    )  # fmt: skip


def erase(project: Project, *args: str) -> dict[str, Any]:
    done = project.manage("privacy", "erase", "--source", "7", "--user", "alice", *args)
    return dict(json.loads(done.stdout))


@pytest.mark.parametrize("broker", BROKERS)
def test_a_persons_events_are_erased_from_archive_dead_letters_and_queue(
    project: Project, broker: str
) -> None:
    project.config["processing.plugins.ArchiveProcessor"] = {}
    project.config["processing.plugins.PoisonProcessor"] = {"poison_type": "Poison"}
    with broker_config(broker) as queue:
        project.config["queue"].update(queue)
        server = project.start()
        first = [ev("alice", 1), ev("bob", 2), ev("alice", 3, "Poison"), ev("bob", 4, "Poison")]
        with server.client() as client:
            assert client.post("/ingest/batch", json=first).status_code == 202
            wait_for_totals(client, events=4)
            wait_until(lambda: len(letters(project)) == 2, timeout=30)
            stats = client.get("/stats").json()
        server.stop()

        web = project.start("--web-only")
        queued = [ev("alice", 5), ev("carol", 6)]
        with httpx.Client(base_url=web.url, timeout=30) as client:
            assert client.post("/ingest/batch", json=queued).status_code == 202
            assert client.post("/ingest", json=ev("alice", 7)).status_code == 202
        web.stop()
        view = QueueView(project.database_url, project.config["queue"])
        assert view.length() == 2
        before = (archived(project), letters(project))

        dry = erase(project, "--dry-run", "--json")
        assert (dry["archive_events"], dry["dead_letter_events"], dry["queue_events"]) == (2, 1, 2)
        assert (archived(project), letters(project)) == before and view.length() == 2

        done = erase(project, "--noinput", "--json", "--by", "dpo")
        assert (done["archive_events"], done["dead_letter_events"], done["queue_events"]) == (
            2, 1, 2
        )  # fmt: skip
        assert done["queue_batches_removed"] == 1 and done["dead_letters_deleted"] == 1
        assert archived(project) == [("bob", 2), ("bob", 4)]
        assert letters(project) == [("bob", 4)]
        assert view.length() == 1
        audit = rows(project.database_url, "SELECT by, source_id FROM privacy_erasureaudit")
        assert [(by, int(sid) + BIAS) for by, sid in audit] == [("dpo", 7)]  # u64, biased
        assert erase(project, "--noinput", "--json")["events"] == 0  # a second run erases 0
        unknown = project.manage(
            "privacy", "erase", "--source", "nosuch", "--user", "x", check=False
        )
        assert unknown.returncode == 2 and "unknown source 'nosuch'" in unknown.stderr

        server = project.start()  # the rewritten batch runs, without alice's event
        with server.client() as client:
            wait_until(lambda: view.length() == 0, timeout=30)
            wait_until(lambda: ("carol", 6) in archived(project), timeout=30)
            after = client.get("/stats").json()
        assert archived(project) == [("bob", 2), ("bob", 4), ("carol", 6)]
        assert after["events_count"] == stats["events_count"] + 1  # counts kept, carol's added
        server.stop()
