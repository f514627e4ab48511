"""The nemesis: faults drawn at random from a seed, one at a time, each with an
end and recorded (a ``fault`` record: kind, target, start, end).

Kinds (:func:`fault_kinds` lists those a configuration has):

* ``kill:<role>`` — SIGKILL of one process of that role (:mod:`tests.faults.roles`)
  on a node picked at random; it ends when a process of that role runs again on
  that node (respawned by its parent, or the node restarted by the deployment's
  supervisor), at most ``KILL_END_S`` later;
* ``stop:<role>`` — SIGSTOP, held, then SIGCONT;
* ``pg:stop`` (stopped hard: ``pg_ctl -m immediate``, held, started), ``pg:freeze``
  (SIGSTOP of the postmaster and every backend, held, SIGCONT), ``pg:restart``
  (``pg_ctl -m fast`` stop, then start at once), ``pg:delay`` (the proxy holds
  every chunk 50 to 500 ms, for the hold), ``pg:cut`` (the proxy resets every
  connection and refuses new ones, for the hold);
* ``redis:freeze``, ``redis:restart`` (SIGKILL, held, started on its
  append-only file), ``redis:delay``, ``redis:cut``.

Holds are drawn from ``hold`` (seconds), the quiet time between faults from
``quiet``, but after a share ``settle`` of the faults a quiet spell of
``SETTLE_S`` lets the checker judge that fault alone (counted within 10 s?).
``plan``: kinds injected first, in that order (a short run's cover of
every kind); then random kinds until the time is up (``random_after_plan``)."""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.faults.checker import DEADLINE_S
from tests.faults.configs import uses_postgres, uses_redis
from tests.faults.deployment import Deployment
from tests.faults.history import History
from tests.faults.roles import PROCESS_ROLES
from tests.faults.services import OwnPostgres, OwnRedis, signal_pids

__all__ = ["Nemesis", "fault_kinds"]

PG_FAULTS = ("pg:stop", "pg:freeze", "pg:restart", "pg:delay", "pg:cut")
REDIS_FAULTS = ("redis:freeze", "redis:restart", "redis:delay", "redis:cut")
KILL_END_S = 90.0
# A quiet spell long enough for the checker to judge the fault before it alone:
# were its acknowledged events counted within DEADLINE_S of its end?
SETTLE_S = DEADLINE_S + 3.0
TARGET_WAIT_S = 30.0  # for a node that is restarting to have the role again


def process_kinds(deployment: Deployment) -> list[str]:
    roles: set[str] = set()
    for node in deployment.nodes:
        if node.spec.command == "qcluster":
            roles |= {"qcluster", "sentinel", "monitor", "pusher", "queue-worker"}
        elif "--web-only" in node.spec.options:
            roles |= {"serve", "granian-main", "granian-worker"}
        else:
            roles |= set(PROCESS_ROLES)
    return [
        f"{action}:{role}" for role in PROCESS_ROLES if role in roles for action in ("kill", "stop")
    ]


def fault_kinds(deployment: Deployment) -> list[str]:
    kinds = process_kinds(deployment)
    kinds += list(PG_FAULTS) if uses_postgres(deployment.name) else []
    kinds += list(REDIS_FAULTS) if uses_redis(deployment.name) else []
    return kinds


@dataclass
class Nemesis:
    deployment: Deployment
    history: History
    seed: int
    postgres: OwnPostgres | None = None
    redis: OwnRedis | None = None
    hold: tuple[float, float] = (1.0, 6.0)
    quiet: tuple[float, float] = (1.0, 4.0)
    settle: float = 0.0  # chance of a quiet spell of SETTLE_S after a fault
    plan: list[str] = field(default_factory=list)
    faults: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.kinds = fault_kinds(self.deployment)
        self._stop = threading.Event()
        self._stopped: list[int] = []  # held by SIGSTOP right now

    def run(self, seconds: float, *, random_after_plan: bool = True) -> None:
        """Inject the plan, then random faults, until ``seconds`` have passed
        (a fault under way is finished)."""
        deadline = time.monotonic() + seconds
        plan = list(self.plan)
        while not self._stop.is_set():
            if plan:
                kind = plan.pop(0)
            elif random_after_plan and time.monotonic() < deadline:
                kind = self.rng.choice(self.kinds)
            else:
                return
            self.faults.append(self.inject(kind))
            settling = self.rng.random() < self.settle
            self._stop.wait(SETTLE_S if settling else self.rng.uniform(*self.quiet))

    def stop(self) -> None:
        self._stop.set()

    def heal(self) -> None:
        """End whatever fault an error left under way: every process and service
        running, every link whole (the next configuration's run needs them)."""
        signal_pids(self._stopped, signal.SIGCONT)
        for service in (self.postgres, self.redis):
            if service is None:
                continue
            signal_pids(service.pids(), signal.SIGCONT)
            service.proxy.heal()
            if not service.pids():
                service.up()

    def inject(self, kind: str) -> dict[str, Any]:
        first, second = kind.split(":")
        hold = round(self.rng.uniform(*self.hold), 2)
        if second in PROCESS_ROLES:  # <action>:<role>
            record = self._process_fault(first, second, hold)
        else:  # <service>:<action>
            service: Any = {"pg": self.postgres, "redis": self.redis}[first]
            if service is None:
                raise ValueError(f"{kind}: this configuration has no {first}")
            record = self._service_fault(second, service, hold)
        return self.history.add("fault", kind=kind, **record)

    def _process_fault(self, action: str, role: str, hold: float) -> dict[str, Any]:
        found = self._target(role)
        if found is None:
            now = self.history.now()
            return {"start": now, "end": now, "skipped": f"no {role} process running"}
        node, pid = found
        start = self.history.now()
        if action == "kill":
            count = len(self.deployment.node(node).roles().get(role, []))
            os.kill(pid, signal.SIGKILL)
            back = _wait(lambda: self._replaced(node, role, pid, count), KILL_END_S)
            return {
                "start": start,
                "end": self.history.now(),
                "node": node,
                "pid": pid,
                "ended": "replaced" if back else f"not replaced in {KILL_END_S:.0f} s",
            }
        self._stopped.append(pid)
        os.kill(pid, signal.SIGSTOP)
        time.sleep(hold)
        os.kill(pid, signal.SIGCONT)
        self._stopped.remove(pid)
        return {"start": start, "end": self.history.now(), "node": node, "pid": pid, "hold": hold}

    def _target(self, role: str) -> tuple[str, int] | None:
        """A node with a process of ``role`` and that process, picked at random."""
        deadline = time.monotonic() + TARGET_WAIT_S
        while time.monotonic() < deadline:
            having = [(n.name, n.roles().get(role, [])) for n in self.deployment.nodes]
            having = [(name, pids) for name, pids in having if pids]
            if having:
                name, pids = self.rng.choice(sorted(having))
                return name, self.rng.choice(pids)
            time.sleep(0.2)
        return None

    def _replaced(self, node: str, role: str, killed: int, count: int) -> bool:
        """Does the node run ``count`` processes of ``role`` again, none of them the killed one?"""
        pids = self.deployment.node(node).roles().get(role, [])
        return killed not in pids and len(pids) >= count

    def _service_fault(self, action: str, service: Any, hold: float) -> dict[str, Any]:
        start = self.history.now()
        detail: dict[str, Any] = {"hold": hold}
        if action == "stop":
            service.down("immediate")
            time.sleep(hold)
            service.up()
        elif action == "freeze":
            _freeze(service, hold)
        elif action == "restart" and isinstance(service, OwnPostgres):
            service.down("fast")
            service.up()
            detail = {}
        elif action == "restart":
            service.kill()
            time.sleep(hold)
            service.up()
        elif action == "delay":
            detail["latency"] = latency = round(self.rng.uniform(0.05, 0.5), 3)
            service.proxy.delay(latency)
            time.sleep(hold)
            service.proxy.heal()
        elif action == "cut":
            service.proxy.cut()
            time.sleep(hold)
            service.proxy.heal()
        else:
            raise ValueError(f"unknown fault action {action!r}")
        return {"start": start, "end": self.history.now(), **detail}


def _freeze(service: Any, hold: float) -> None:
    """SIGSTOP every process of the service (twice: none forks after its stop), then SIGCONT."""
    pids = service.pids()
    signal_pids(pids, signal.SIGSTOP)
    pids = sorted(set(pids) | set(service.pids()))
    signal_pids(pids, signal.SIGSTOP)
    time.sleep(hold)
    signal_pids(pids, signal.SIGCONT)


def _wait(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False
