"""The ArchiveProcessor on a real cluster: a worker SIGKILLed after it archived a
batch and before the broker's acknowledgement; the batch is redelivered to
another worker and the archive still holds each event exactly once (its batch-id
ledger is written in the transaction of the events). Then the whole serve tree
is SIGKILLed at once mid-batch and started again: still exactly once."""

from __future__ import annotations

import copy
import os
import signal
from pathlib import Path

import pytest

from tests.conftest import BASE_CONFIG, event
from tests.integration.test_worker_crash import _markers
from tests.support.dbread import queue_length, rows, wait_queue_empty
from tests.support.procs import Project, descendants, kill_tree, wait_until
from tests.support.traffic import wait_for_totals

pytestmark = pytest.mark.integration


def _archived(project: Project) -> list[tuple[int, str, str]]:
    return sorted(
        (int(r[0]) + 2**63, str(r[1]), str(r[2]))  # source ids are stored biased (U64Field)
        for r in rows(
            project.database_url, "SELECT source_id, type, batch_id FROM archive_archivedevent"
        )
    )


def test_archive_holds_every_event_once_after_killed_workers_batches_are_redelivered(
    project: Project, tmp_path: Path
) -> None:
    marker_dir = tmp_path / "markers"
    marker_dir.mkdir()
    config = copy.deepcopy(BASE_CONFIG)
    config["queue"].update(timeout=5, retry=7)
    # Archived first, then the batch lingers: the kill lands after the archive's
    # commit and before the broker's acknowledgement.
    config["processing.plugins.ArchiveProcessor"] = {}
    config["processing.plugins.SlowProcessor"] = {"seconds": 2.0, "marker_dir": str(marker_dir)}
    project.config = config
    server = project.start()

    with server.client() as client:
        batch = [event(source_id=7, type=f"t{i % 3}", data={"i": i}) for i in range(30)]
        assert client.post("/ingest/batch", json=batch).json() == {"accepted": 30, "rejected": []}
        batch_id, pid = wait_until(lambda: _markers(marker_dir), timeout=30)[0]
        assert pid in descendants(server.process.pid)
        os.kill(pid, signal.SIGKILL)
        assert len(_archived(project)) == 30  # archived before the kill
        assert queue_length(project.database_url) == 1  # ... and still owed to the broker

        redelivered = wait_until(lambda: _markers(marker_dir, batch_id)[1:], timeout=60)
        assert redelivered[0][1] != pid
        wait_queue_empty(project.database_url, timeout=60)
        archived = _archived(project)
        assert len(archived) == 30 and {b for _, _, b in archived} == {batch_id}
        wait_for_totals(client, events=30)

    # Every process of the tree at once, in the middle of a second batch.
    with server.client() as client:
        second = [event(source_id=8, data={"i": i}) for i in range(20)]
        assert client.post("/ingest/batch", json=second).json()["accepted"] == 20
        second_id = wait_until(
            lambda: [b for b, _ in _markers(marker_dir) if b != batch_id], timeout=30
        )[0]
    kill_tree(server.process.pid)
    server.process.wait(30)
    assert sum(1 for s, _, _ in _archived(project) if s == 8) == 20

    restarted = project.start()
    with restarted.client() as client:
        wait_until(lambda: len(_markers(marker_dir, second_id)) >= 2, timeout=60)
        wait_queue_empty(project.database_url, timeout=60)
        wait_for_totals(client, events=50)
        assert client.get("/stats").json() == {"sources_count": 2, "events_count": 50}
    archived = _archived(project)
    assert len(archived) == 50
    assert sum(1 for s, _, b in archived if s == 8 and b == second_id) == 20
    assert restarted.stop() == 0
