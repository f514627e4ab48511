"""A queue worker SIGKILLed in the middle of a batch: the broker redelivers the
batch to another worker, and the stats count it once (the StorageProcessor had
already merged it before the kill; its batch-id ledger skips the redelivery)."""

from __future__ import annotations

import copy
import os
import signal
from pathlib import Path

import pytest

from tests.conftest import BASE_CONFIG, event
from tests.support.dbread import processed_batches, queue_length, wait_queue_empty
from tests.support.procs import Project, descendants, wait_until
from tests.support.traffic import wait_for_totals

pytestmark = pytest.mark.integration

SLOW_SECONDS = 2.0


def _markers(marker_dir: Path, batch_id: str | None = None) -> list[tuple[str, int]]:
    """(batch id, worker pid) of each batch start the SlowProcessor recorded, in order."""
    names = sorted(marker_dir.iterdir(), key=lambda p: int(p.name.split(".")[1]))
    found = [(p.name.split(".")[0], int(p.name.split(".")[2])) for p in names]
    return [m for m in found if batch_id is None or m[0] == batch_id]


def test_batch_of_a_killed_worker_is_redelivered_and_counted_once(
    project: Project, tmp_path: Path
) -> None:
    marker_dir = tmp_path / "markers"
    marker_dir.mkdir()
    config = copy.deepcopy(BASE_CONFIG)
    # The batch comes back once its sentinel sees the worker gone (about a second),
    # not `retry` seconds after the claim.
    config["queue"].update(timeout=5, retry=7)
    # The stats are merged first, then the batch lingers in the SlowProcessor:
    # the kill lands after the merge and before the broker's acknowledgement.
    config["processing.plugins.SlowProcessor"] = {
        "seconds": SLOW_SECONDS,
        "marker_dir": str(marker_dir),
    }
    project.config = config
    server = project.start()

    with server.client() as client:
        response = client.post("/ingest/batch", json=[event(source_id=7) for _ in range(30)])
        assert response.status_code == 202
        assert response.json() == {"accepted": 30, "rejected": []}

        batch_id, pid = wait_until(lambda: _markers(marker_dir), timeout=30)[0]
        assert pid in descendants(server.process.pid), "marker pid is not a worker of serve"
        os.kill(pid, signal.SIGKILL)
        # Merged once before the kill; the batch is still owed to the broker.
        assert client.get("/stats").json() == {"sources_count": 1, "events_count": 30}
        assert queue_length(project.database_url) == 1

        # The broker hands the batch to another worker, which runs it to the end.
        redelivered = wait_until(lambda: _markers(marker_dir, batch_id)[1:], timeout=60)
        assert redelivered[0][1] != pid
        wait_queue_empty(project.database_url, timeout=60)

        assert _markers(marker_dir) == [(batch_id, pid), redelivered[0]]
        assert processed_batches(project.database_url) == {batch_id: 30}
        wait_for_totals(client, events=30)
        assert client.get("/stats").json() == {"sources_count": 1, "events_count": 30}
        assert client.get("/stats/7").json()["total_events"] == 30
