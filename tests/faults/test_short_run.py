"""The fault injector's seeded short run, in the suite: every configuration of
the pass (SQLite pass: the embedded default; PostgreSQL pass: PostgreSQL with
each broker and the multi-node shape with each), every fault kind at least once
over the pass (each configuration's plan below, in a seeded order, then no
random faults), with the SDK-like client load, the probes, and the checker.

* :func:`test_the_run_injected_its_plan_and_checked_its_history` holds in the
  suite: the harness did its work (each planned fault injected and ended, the
  load answered and counted, the history checked); the table it prints shows
  what the run found.
* :func:`test_the_run_kept_every_invariant`: the run kept every invariant (each
  ``202`` counted once within 10 s of its fault's end, nothing ``503``'d counted,
  no ``500``, ``/readyz`` within 1 s, no orphan, no dead letter from an outage)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tests.faults.checker import CheckResult
from tests.faults.configs import CONFIGURATIONS, FaultServices
from tests.faults.history import History
from tests.faults.nemesis import PG_FAULTS, REDIS_FAULTS
from tests.faults.report import result_table
from tests.faults.roles import PROCESS_ROLES
from tests.faults.run import RunOptions, run_configuration
from tests.support.databases import backend

pytestmark = pytest.mark.e2e

SEED = 21
PROCESS_FAULTS = [f"{action}:{role}" for role in PROCESS_ROLES for action in ("kill", "stop")]
# Each configuration's faults; over a pass, every kind at least once.
PLANS: dict[str, list[str]] = {
    "sqlite-orm": PROCESS_FAULTS,
    # PostgreSQL pass: one restart of a whole node per configuration (the slow part).
    "pg-orm": [
        *PG_FAULTS,
        "kill:queue-worker",
        "stop:granian-worker",
        "kill:serve",
        "stop:qcluster",
    ],
    "pg-redis": [*REDIS_FAULTS, "kill:monitor", "stop:monitor", "kill:pusher", "kill:sentinel"],
    "multinode-orm": ["kill:granian-main", "stop:granian-main", "stop:pusher", "stop:serve"],
    "multinode-redis": [
        "kill:qcluster",
        "stop:sentinel",
        "kill:granian-worker",
        "stop:queue-worker",
    ],
}
PASS_CONFIGS = (
    ["sqlite-orm"] if backend() == "sqlite" else [c for c in CONFIGURATIONS if c != "sqlite-orm"]
)


def test_the_pass_plans_every_fault_kind_of_its_configurations() -> None:
    planned = {kind for config in PASS_CONFIGS for kind in PLANS[config]}
    expected = set(PROCESS_FAULTS)
    if backend() == "postgresql":
        expected |= {*PG_FAULTS, *REDIS_FAULTS}
    assert planned == expected


@pytest.fixture(scope="module", params=PASS_CONFIGS)
def short_run(
    request: pytest.FixtureRequest,
    fault_services: FaultServices,
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[RunOptions, CheckResult, History]:
    config = request.param
    plan = list(PLANS[config])
    random.Random(SEED).shuffle(plan)
    options = RunOptions(
        config=config,
        seed=SEED,
        seconds=0,
        plan=plan,
        random_after_plan=False,
        hold=(1.0, 2.5),
        quiet=(0.5, 1.5),
        settle=0.0,
        final_wait_s=20.0,
        clients=2,
        think_s=0.1,
    )
    workdir: Path = tmp_path_factory.mktemp(config)
    result, history = run_configuration(options, services=fault_services, workdir=workdir)
    print(f"\n{result_table([result])}\nhistory: {history.path}")
    return options, result, history


def test_the_run_injected_its_plan_and_checked_its_history(
    short_run: tuple[RunOptions, CheckResult, History],
) -> None:
    options, result, history = short_run
    faults = history.of("fault")
    assert [f["kind"] for f in faults] == options.plan
    for fault in faults:
        assert "skipped" not in fault, fault
        assert fault["start"] < fault["end"], fault
        assert fault.get("ended", "replaced") == "replaced", fault
    attempts = history.of("attempt")
    acked = [a for a in attempts if a["status"] in (200, 202)]
    assert {a["kind"] for a in acked} == {"ingest", "batch", "v1track", "v1batch"}
    assert {a["ids"] for a in acked} == {True, False}
    assert history.of("counts") and history.of("probe") and history.of("stats")
    assert history.of("final")
    assert sum(row.counted for row in result.rows.values()) > 0
    assert {f["kind"] for f in faults} <= set(result.rows)


def test_the_run_kept_every_invariant(short_run: tuple[RunOptions, CheckResult, History]) -> None:
    _, result, _ = short_run
    shown = "\n".join(f"{v.kind} [{v.fault_kind}] {v.detail}" for v in result.violations[:30])
    assert not result.violations, f"{len(result.violations)} violations:\n{shown}"
