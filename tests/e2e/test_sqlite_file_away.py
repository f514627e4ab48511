"""SQLite's database file taken away from a running tree and put back (a moved
file, a volume detached and attached again): the requests made meanwhile must
not leave an empty database behind (SQLite creates a missing file on connect,
and the WAL files of that empty one break every connection once the real file
is back): ``/readyz`` is ready again, every request meanwhile is answered within
``ingest.commit_timeout`` (+5 s, the fault checker's bound), and each event
acknowledged before, meanwhile and after is counted once; none refused is."""

from __future__ import annotations

import os
import time
from pathlib import Path

from tests.conftest import event
from tests.support.databases import sqlite_pass_only
from tests.support.procs import Project, readyz_ok, wait_until

pytestmark = [sqlite_pass_only("SQLite's database file")]


COMMIT_TIMEOUT = 5.0


def test_requests_while_the_file_is_away_leave_no_empty_database(project: Project) -> None:
    # A commit whose outcome the store cannot tell (its file away) is answered
    # after commit_timeout: shorter than the client's, so a hang is told from it.
    project.config.setdefault("ingest", {})["commit_timeout"] = COMMIT_TIMEOUT
    server = project.start()
    acknowledged, unknown = 1, 0
    path = Path(project.database_url.removeprefix("sqlite:///"))
    away = path.with_name(path.name + ".away")
    with server.client() as client:
        assert client.post("/ingest", json=event(1)).status_code == 202
        wait_until(lambda: client.get("/stats").json()["events_count"] == 1)
        os.replace(path, away)
        try:
            # Every kind of request that opens a connection, for a few seconds.
            until = time.monotonic() + 3
            while time.monotonic() < until:
                for path_ in ("/metrics", "/stats", "/readyz"):
                    client.get(path_)
                started = time.monotonic()
                answer = client.post("/ingest", json=event(2))
                assert time.monotonic() - started < COMMIT_TIMEOUT + 5, answer.text
                assert answer.status_code in (202, 503), answer.text
                if answer.status_code == 202:
                    acknowledged += 1
                elif answer.json().get("details") == [{"outcome": "unknown"}]:
                    unknown += 1
            assert not path.exists(), "a connection made an empty database while the file was away"
        finally:
            os.replace(away, path)
        wait_until(lambda: readyz_ok(server.url), timeout=60)
        assert client.post("/ingest", json=event(3)).status_code == 202
        acknowledged += 1
        wait_until(lambda: client.get("/stats").json()["events_count"] >= acknowledged)
        time.sleep(1)  # none counted twice, nor any refused, a moment later either
        counted = client.get("/stats").json()["events_count"]
        assert acknowledged <= counted <= acknowledged + unknown
