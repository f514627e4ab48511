"""Issue 21's four findings, each as a test of the promise it breaks, against
real processes. Each failed on the code it was found on and passes since its
fix (a finding not fixed yet would be marked ``faults_known``: deselected by
default, ``pytest -m faults_known tests/faults/test_findings.py`` runs it).

1. One queue worker SIGKILLed mid-batch, its cluster alive: the batch is counted
   only after ``queue.retry`` (both brokers). Beside it, found by the fault
   runs: an idle queue worker SIGKILLed while it holds the cluster's task queue
   stops that cluster's processing for good.
2. Redis frozen (SIGSTOP) for 6 s under load: events answered ``503`` counted,
   ``/readyz`` slow (four freezes in a run).
3. PostgreSQL stopped hard for 6 s under load: acknowledged events not counted
   60 s later (intermittent: four stops in a run, on each broker). The cause: a
   batch whose StorageProcessor failed on the unreachable database spent its
   attempts, its bisection failed alike, and the dead letter could not be
   written either; the task ended in that error, unacknowledged, and its
   batches waited ``queue.retry`` (360 s) to be handed out again. Now an outage
   pauses processing (core/outage.py).
4. The sentinel SIGKILLed: its children outlive ``serve``."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import event
from tests.faults.checker import CheckResult
from tests.faults.configs import FaultServices
from tests.faults.deployment import ORPHAN_GRACE_S
from tests.faults.report import result_table
from tests.faults.roles import TreeWatch
from tests.faults.run import RunOptions, run_configuration
from tests.support.databases import BROKERS, postgres_pass_only
from tests.support.procs import Project, descendants, kill_tree, wait_until
from tests.support.queues import QueueView, broker_config

pytestmark = pytest.mark.e2e

DEADLINE_S = 10.0  # the promise: counted within 10 s of the fault's end
SLOW_S = 1.0
# Faults per run in findings 2 and 3 (the findings were made with four; two keep
# the suite within its time, and the short runs and bench.faults inject these kinds
# among the others).
REPEATS = 2
QUIET_S = DEADLINE_S + 3.0  # between them: each judged alone (counted within 10 s?)


def _counted(url: str) -> int:
    return int(httpx.get(f"{url}/stats", timeout=10).json()["events_count"])


def _slow_first(project: Project, marker_dir: Path) -> None:
    """SlowProcessor before the StorageProcessor: a batch is counted only once a
    worker ran it to the end."""
    storage = project.config.pop("processing.plugins.StorageProcessor")
    project.config["processing.plugins.SlowProcessor"] = {
        "seconds": SLOW_S,
        "marker_dir": str(marker_dir),
    }
    project.config["processing.plugins.StorageProcessor"] = storage


@pytest.mark.parametrize("broker", BROKERS)
def test_1_a_killed_queue_workers_batch_is_counted_within_10_s(
    project: Project, tmp_path: Path, broker: str
) -> None:
    marker_dir = tmp_path / "markers"
    marker_dir.mkdir()
    _slow_first(project, marker_dir)
    with broker_config(broker) as queue:
        project.config["queue"].update(queue, timeout=30, retry=60)  # retry: 360 by default
        view = QueueView(project.database_url, project.config["queue"])
        server = project.start()
        with server.client() as client:
            assert client.post("/ingest/batch", json=[event(7)] * 30).status_code == 202
        first = wait_until(lambda: sorted(marker_dir.iterdir()), timeout=60)[0]
        worker = int(first.name.rsplit(".", 1)[1])
        assert worker in descendants(server.process.pid)
        os.kill(worker, signal.SIGKILL)  # mid-batch: the cluster lives on
        killed = time.monotonic()
        try:
            wait_until(lambda: _counted(server.url) == 30, timeout=DEADLINE_S + SLOW_S)
        except TimeoutError:
            raise AssertionError(
                f"{broker}: the batch of the killed worker is not counted {DEADLINE_S + SLOW_S:.0f}"
                f" s after the kill (claims: {view.claims()}, queue.retry 60 s)"
            ) from None
        print(f"{broker}: counted {time.monotonic() - killed:.1f} s after the kill")


def test_1b_killing_each_idle_queue_worker_leaves_the_cluster_processing(project: Project) -> None:
    server = project.start()
    watch = TreeWatch(server.process.pid, command="serve", workers=2).start()
    try:
        with server.client() as client:
            assert client.post("/ingest", json=event(1)).status_code == 202
            wait_until(lambda: _counted(server.url) == 1)
            # One idle worker at a time holds the task queue's read lock: kill each
            # (the first of the workers running, then the second: a restart of the
            # cluster's processes may have replaced both).
            for index in range(2):
                victim = wait_until(
                    lambda: (
                        len(watch.roles().get("queue-worker", [])) == 2
                        and watch.roles()["queue-worker"]
                    )
                )[index]
                os.kill(victim, signal.SIGKILL)
                wait_until(
                    lambda v=victim: (
                        v not in watch.roles().get("queue-worker", [v])
                        and len(watch.roles()["queue-worker"]) == 2
                    )
                )
            assert client.post("/ingest/batch", json=[event(2)] * 10).status_code == 202
        try:
            wait_until(lambda: _counted(server.url) == 11, timeout=DEADLINE_S)
        except TimeoutError:
            raise AssertionError(
                f"10 events acknowledged after the queue workers were replaced are not counted"
                f" in {DEADLINE_S:.0f} s (counted: {_counted(server.url) - 1})"
            ) from None
    finally:
        watch.stop()
        kill_tree(server.process.pid)
        server.process.wait(30)


def _violations(result: CheckResult, *kinds: str) -> str:
    found = [v for v in result.violations if v.kind in kinds]
    shown = "\n".join(f"{v.kind} [{v.fault_kind}] {v.detail}" for v in found[:20])
    return f"{len(found)} violations\n{shown}\n{result_table([result])}" if found else ""


def _repeated(
    services: FaultServices, workdir: Path, *, config: str, fault: str, quiet: float, wait: float
) -> CheckResult:
    """A run of ``config`` under load in which ``fault`` is held 6 s, several times
    (the findings are intermittent: each repeat is another chance)."""
    options = RunOptions(
        config=config,
        seed=sum(map(ord, config + fault)),
        seconds=0,
        plan=[fault] * REPEATS,
        random_after_plan=False,
        hold=(6.0, 6.0),
        quiet=(quiet, quiet),
        settle=0.0,
        final_wait_s=wait,
    )
    return run_configuration(options, services=services, workdir=workdir)[0]


@postgres_pass_only("the run's own PostgreSQL and Redis")
def test_2_redis_frozen_6_s_under_load_counts_no_503_and_readyz_answers(
    fault_services: FaultServices, tmp_path: Path
) -> None:
    result = _repeated(
        fault_services, tmp_path, config="pg-redis", fault="redis:freeze", quiet=QUIET_S, wait=30.0
    )
    problems = _violations(result, "counted_503", "readyz_slow", "missing", "late", "duplicated")
    assert not problems, problems


@postgres_pass_only("the run's own PostgreSQL")
@pytest.mark.parametrize("config", ["pg-orm", "pg-redis"])
def test_3_postgres_stopped_hard_6_s_under_load_loses_no_acknowledged_event(
    fault_services: FaultServices, tmp_path: Path, config: str
) -> None:
    # Counted 60 s after the last stop (the finding); within 10 s (the promise).
    result = _repeated(
        fault_services, tmp_path, config=config, fault="pg:stop", quiet=QUIET_S, wait=60.0
    )
    problems = _violations(result, "missing", "late", "dead_letter", "duplicated", "counted_503")
    assert not problems, problems


def test_4_no_process_of_the_tree_outlives_serve_when_the_sentinel_is_killed(
    project: Project,
) -> None:
    server = project.start()
    watch = TreeWatch(server.process.pid, command="serve", workers=2).start()
    try:
        roles = wait_until(lambda: len(watch.roles().get("pusher", [])) == 1 and watch.roles())
        os.kill(roles["sentinel"][0], signal.SIGKILL)
        server.process.wait(60)
        deadline = time.monotonic() + ORPHAN_GRACE_S
        while watch.leftovers() and time.monotonic() < deadline:
            time.sleep(0.2)
        left = watch.leftovers()
        assert not left, f"still running {ORPHAN_GRACE_S:.0f} s after serve exited: {left}"
    finally:
        watch.stop()
        for pid in watch.leftovers():
            os.kill(pid, signal.SIGKILL)
