"""SQLite's database file taken away from a running tree and put back (a moved
file, a volume detached and attached again): the requests made meanwhile must
not leave an empty database behind (SQLite creates a missing file on connect,
and the WAL files of that empty one break every connection once the real file
is back): ``/readyz`` is ready again and the events acknowledged before and after
are counted."""

from __future__ import annotations

import os
import time
from pathlib import Path

from tests.conftest import event
from tests.support.databases import sqlite_pass_only
from tests.support.procs import Project, readyz_ok, wait_until

pytestmark = [sqlite_pass_only("SQLite's database file")]


def test_requests_while_the_file_is_away_leave_no_empty_database(project: Project) -> None:
    server = project.start()
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
                client.post("/ingest", json=event(2))
            assert not path.exists(), "a connection made an empty database while the file was away"
        finally:
            os.replace(away, path)
        wait_until(lambda: readyz_ok(server.url), timeout=60)
        assert client.post("/ingest", json=event(3)).status_code == 202
        stats = wait_until(lambda: (s := client.get("/stats").json())["events_count"] >= 2 and s)
        assert stats["events_count"] >= 2
