"""A dependency outage while batches are in flight pauses processing: the run's
own PostgreSQL stopped hard (both brokers), the Redis broker's Redis killed and
started again on its append-only file. Afterwards every acknowledged event is
counted once, nothing is dead-lettered, and the pause shows in the log (one
line at its start, one at its end) and in ``/metrics``."""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.conftest import event
from tests.faults.configs import BASE_CONFIG, NATIVE_SOURCES, SHUTDOWN, FaultServices
from tests.support.databases import postgres_pass_only
from tests.support.dbread import dead_letters
from tests.support.procs import Project, Server, wait_until

pytestmark = [pytest.mark.e2e, postgres_pass_only("the run's own PostgreSQL and Redis")]

BATCHES = 24
EVENTS_PER_BATCH = 50
OUTAGE_S = 5.0
DEADLINE_S = 10.0  # the promise: counted within 10 s of the fault's end
PROCESSES = 6  # of a serve tree that may meet the store: 2 queue workers, pusher, monitor, 2 web


def _project(services: FaultServices, workdir: Path, broker: str) -> tuple[Project, Path]:
    """Serve on the run's own PostgreSQL (and Redis), a slow plugin before the
    StorageProcessor so that batches are in flight when the fault comes."""
    url = services.database(f"pg-{broker}", workdir)
    config = {section: dict(values) for section, values in BASE_CONFIG.items()}
    if broker == "redis":
        config["queue"].update(
            broker="redis", redis_url=services.rd().url(), name=f"outage-{uuid.uuid4().hex[:8]}"
        )
    markers = workdir / "markers"
    markers.mkdir()
    storage = config.pop("processing.plugins.StorageProcessor")
    config["processing.plugins.SlowProcessor"] = {"seconds": 0.15, "marker_dir": str(markers)}
    config["processing.plugins.StorageProcessor"] = storage
    return Project(workdir=workdir, database_url=url, config=config), markers


def _send(server: Server) -> int:
    with server.client() as client:
        for i in range(BATCHES):
            source = NATIVE_SOURCES[i % len(NATIVE_SOURCES)]
            answer = client.post("/ingest/batch", json=[event(source)] * EVENTS_PER_BATCH)
            assert answer.status_code == 202, answer.text
    return BATCHES * EVENTS_PER_BATCH


def _counted(server: Server) -> int:
    return int(httpx.get(f"{server.url}/stats", timeout=10).json()["events_count"])


def _metric(server: Server, name: str, store: str) -> float:
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    found = re.search(rf'^{name}{{store="{store}"}} (\S+)$', text, re.MULTILINE)
    assert found, f"{name}{{store={store!r}}} not in /metrics"
    return float(found.group(1))


def _check_after(server: Server, project: Project, *, sent: int, ended: float, store: str) -> None:
    try:
        wait_until(lambda: _counted(server) >= sent, timeout=DEADLINE_S, interval=0.2)
    except TimeoutError:
        raise AssertionError(
            f"{_counted(server)} of {sent} acknowledged events counted {DEADLINE_S:.0f} s after"
            f" the {store} came back\n{server.log()[-4000:]}"
        ) from None
    print(f"{store}: all counted {time.monotonic() - ended:.1f} s after it came back")
    time.sleep(1.0)  # a batch counted twice would show now
    assert _counted(server) == sent
    assert dead_letters(project.database_url) == []
    waited = _metric(server, "telemetron_store_unavailable_seconds_total", store)
    retries = _metric(server, "telemetron_store_outage_retries_total", store)
    print(f"{store}: paused {waited:.1f} s over {retries:.0f} tries (all processes)")
    assert waited > 0 and retries > 0
    # One line per process at the outage's start and one at its end, not one per try.
    lines = [line for line in server.log().splitlines() if "telemetron.outage" in line]
    print("\n".join(line[:200] for line in lines))
    began = [line for line in lines if f"the {store} is unreachable" in line]
    ended = [line for line in lines if f"the {store} answers again after" in line]
    assert 1 <= len(began) <= PROCESSES and len(began) < retries, lines
    assert 1 <= len(ended) <= len(began), lines


@pytest.mark.parametrize("broker", ["orm", "redis"])
def test_postgres_stopped_with_batches_in_flight_pauses_processing(
    fault_services: FaultServices, tmp_path: Path, broker: str
) -> None:
    pg = fault_services.pg()
    project, markers = _project(fault_services, tmp_path, broker)
    server = project.start(*SHUTDOWN)
    try:
        sent = _send(server)
        wait_until(lambda: any(markers.iterdir()), timeout=30)  # a batch is being processed
        pg.down("immediate")
        time.sleep(OUTAGE_S)
        pg.up()
        ended = time.monotonic()
        _check_after(server, project, sent=sent, ended=ended, store="database")
    finally:
        if not pg.pids():
            pg.up()
        server.stop(timeout=60)


def test_redis_killed_and_restarted_with_batches_in_flight_pauses_processing(
    fault_services: FaultServices, tmp_path: Path
) -> None:
    rd = fault_services.rd()
    project, markers = _project(fault_services, tmp_path, "redis")
    server = project.start(*SHUTDOWN)
    try:
        sent = _send(server)
        wait_until(lambda: any(markers.iterdir()), timeout=30)
        rd.kill()
        time.sleep(OUTAGE_S)
        rd.up()  # replays its append-only file
        ended = time.monotonic()
        _check_after(server, project, sent=sent, ended=ended, store="redis")
    finally:
        if not rd.pids():
            rd.up()
        server.stop(timeout=60)
