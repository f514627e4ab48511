"""One fault run of one configuration: start its nodes, put the client load
and the probes on them, let the nemesis inject its faults, let the load go on
a little, stop the client, poll the counts until every acknowledged event is
counted or the final wait is over, stop the nodes (a stop that leaves processes
behind is recorded), read the dead letters, and check the history.

``python -m bench.faults`` runs it for long runs; tests/faults/test_short_run.py
runs a short seeded one of every configuration."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.faults.checker import ACKED, CheckResult, check
from tests.faults.configs import (
    BASE_CONFIG,
    KEYED_SOURCES,
    NATIVE_SOURCES,
    FaultServices,
    deployment_build,
)
from tests.faults.deployment import Deployment
from tests.faults.history import History
from tests.faults.nemesis import Nemesis
from tests.faults.probes import Prober, StatsWatch, counts_poll
from tests.faults.sdkclient import SdkClient, attempt_type
from tests.support.dbread import dead_letters

__all__ = ["RunOptions", "run_configuration"]


@dataclass
class RunOptions:
    config: str
    seed: int
    seconds: float = 60.0  # of random faults, after the plan
    plan: list[str] = field(default_factory=list)  # kinds injected first
    random_after_plan: bool = True
    hold: tuple[float, float] = (1.0, 6.0)
    quiet: tuple[float, float] = (1.0, 4.0)
    settle: float = 0.2  # share of faults followed by a quiet spell (nemesis.SETTLE_S)
    warmup_s: float = 2.0
    calm_s: float = 2.0  # load after the last fault
    final_wait_s: float = 60.0  # after the last fault, for the counts
    clients: int = 4
    think_s: float = 0.03


def run_configuration(
    options: RunOptions, *, services: FaultServices, workdir: Path
) -> tuple[CheckResult, History]:
    history = History(workdir / f"history-{options.config}-{options.seed}.jsonl")
    deployment = deployment_build(
        options.config, services=services, workdir=workdir, history=history
    )
    commit_timeout = float(BASE_CONFIG["ingest"]["commit_timeout"])
    try:
        deployment.start()
        history.add(
            "run",
            config=options.config,
            seed=options.seed,
            options=options.__dict__,
            commit_timeout=commit_timeout,
            nodes=[n.name for n in deployment.nodes],
        )
        _drive(options, deployment, services, history)
        deployment.stop()
        _final_record(deployment, services, history)
    finally:
        deployment.stop()
        history.close()
    return check(history.records, commit_timeout=commit_timeout), history


def _drive(
    options: RunOptions, deployment: Deployment, services: FaultServices, history: History
) -> None:
    web = deployment.http_nodes()
    client = SdkClient(
        history,
        nodes=lambda: web,
        url=deployment.url,
        native_sources=NATIVE_SOURCES,
        keys=services.keys,
        seed=options.seed,
        threads=options.clients,
        think_s=options.think_s,
    ).start()
    probed = [n.name for n in deployment.nodes if n.spec.command == "serve"]
    prober = Prober(history, probed, deployment.url_any)  # from the end of the warm-up
    watch = StatsWatch(history, web, deployment.url).start()
    nemesis = Nemesis(
        deployment,
        history,
        options.seed,
        postgres=services.postgres,
        redis=services.redis,
        hold=options.hold,
        quiet=options.quiet,
        settle=options.settle,
        plan=list(options.plan),
    )
    try:
        threading.Event().wait(options.warmup_s)
        prober.start()
        nemesis.run(options.seconds, random_after_plan=options.random_after_plan)
        last_end = history.now()
        threading.Event().wait(options.calm_s)
        stopped = threading.Thread(target=client.stop, daemon=True)
        stopped.start()
        deployment.wait_up(60)
        counts_poll(
            history,
            urls=lambda: [u for n in web if (u := deployment.url(n))],
            sources=NATIVE_SOURCES + KEYED_SOURCES,
            expected=lambda counts: not stopped.is_alive() and _all_counted(history, counts),
            until=last_end + options.final_wait_s,
        )
        stopped.join()
    finally:
        nemesis.stop()
        nemesis.heal()
        client.stop()
        prober.stop()
        watch.stop()


def _all_counted(history: History, counts: dict[str, int]) -> bool:
    """Is every acknowledged attempt's operation counted in full?"""
    by_op: dict[int, list[dict[str, Any]]] = {}
    for a in history.of("attempt"):
        by_op.setdefault(a["op"], []).append(a)
    for attempts in by_op.values():
        acked = next((a for a in attempts if a["status"] in ACKED), None)
        if acked is None:
            continue
        if acked["ids"]:
            got = sum(counts.get(attempt_type(a["op"], a["a"]), 0) for a in attempts)
        else:
            got = counts.get(attempt_type(acked["op"], acked["a"]), 0)
        if got < acked["n"]:
            return False
    return True


def _final_record(deployment: Deployment, services: FaultServices, history: History) -> None:
    url = deployment.project.database_url
    if services.postgres is not None and url.startswith("postgresql"):
        url = services.postgres.admin_url(url.rsplit("/", 1)[1])
    letters = [
        {
            "batch_id": d["batch_id"],
            "plugin": d["plugin"],
            "error": f"{d['error_class']}: {d['error_message']}"[:200],
            "events": len(d["events"] or []),
        }
        for d in dead_letters(url)
    ]
    history.add("final", t=history.now(), dead_letters=letters)
