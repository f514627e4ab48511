"""``GET /readyz``: can this node do its work? Three cheap checks, each a query
or two, so a load balancer may probe every second:

* ``database`` — ``SELECT 1`` on this process's connection (and, on SQLite,
  the database file is still where the configuration says);
* ``broker`` — the django-q2 broker answers (the size of its queue);
* ``cluster`` — a worker cluster reported in the last few seconds (inline
  processing, ``queue.workers = 0``, needs none; see :mod:`broker.leases`).

``200`` with the checks, or ``503`` naming the failing ones, always within a
second, whatever a dependency does: each check runs in a thread of its own
(one at a time per check, so a probe during a freeze adds no thread) and is given
``DEADLINE_S``; one that has not answered by then fails as "did not answer"
(it may still be running from an earlier probe: that run is waited for, not
another one started).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django import db
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse

from broker.interface import queue_broker
from broker.leases import cluster_statuses

__all__ = ["DEADLINE_S", "Check", "readiness_checks", "readyz"]

log = logging.getLogger("telemetron.readiness")

DEADLINE_S = 0.5  # every check's answer within it, /readyz's within a second (loaded machines too)


@dataclass(frozen=True)
class Check:
    """One check's result: ``facts`` on success, ``error`` on failure."""

    ok: bool
    facts: dict[str, Any] = field(default_factory=dict)
    error: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"ok": True, **self.facts} if self.ok else {"ok": False, "error": self.error}


def _database() -> dict[str, Any]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"vendor": connection.vendor}


def _sqlite_file_check() -> None:
    """On SQLite, the database file is still where the configuration says:
    looked at before any check connects (SQLite would make an empty one)."""
    if connection.vendor == "sqlite":
        name = str(connection.settings_dict["NAME"])
        if not name.startswith(("file:", ":memory:")) and not Path(name).is_file():
            raise RuntimeError(f"database file {name} is missing")


def _broker() -> dict[str, Any]:
    queue = queue_broker()
    return {"broker": queue.info(), "queued": queue.depth().waiting}


def _cluster() -> dict[str, Any]:
    if settings.Q_CLUSTER.get("sync"):
        return {"mode": "inline"}
    statuses = cluster_statuses(queue_broker())
    alive = [s for s in statuses if s.alive]
    if not alive:
        seen = ", ".join(f"{s.host} {s.status}" for s in statuses) or "none"
        raise RuntimeError(f"no worker cluster reported in the last few seconds (seen: {seen})")
    return {
        "clusters": len(alive),
        "workers": sum(s.workers for s in alive),
        "age_s": min(s.age_s for s in alive),
    }


_CHECKS: dict[str, Callable[[], dict[str, Any]]] = {
    "database": _database,
    "broker": _broker,
    "cluster": _cluster,
}


class _Runner:
    """The run of each check under way, if any: one daemon thread per run (a
    check stuck on a frozen store must not hold the process at exit)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[str, tuple[Future[Check], float]] = {}

    def start(self, name: str, check: Callable[[], dict[str, Any]]) -> tuple[Future[Check], float]:
        """The run of ``check`` under way (and since when), or a new one."""
        with self._lock:
            run = self._running.get(name)
            if run is None or run[0].done():
                future: Future[Check] = Future()

                def target() -> None:
                    try:
                        future.set_result(_run(check))
                    except BaseException as exc:  # never a run that never ends
                        future.set_exception(exc)

                thread = threading.Thread(target=target, name=f"readyz-{name}", daemon=True)
                run = self._running[name] = (future, time.monotonic())
                thread.start()
            return run


_runner = _Runner()


def _run(check: Callable[[], dict[str, Any]]) -> Check:
    try:
        _sqlite_file_check()
        return Check(ok=True, facts=check())
    except Exception as exc:
        return Check(ok=False, error=f"{type(exc).__name__}: {exc}".strip())
    finally:
        db.connections.close_all()  # this thread's: a fresh one per probe, none left idle


def readiness_checks(deadline_s: float = DEADLINE_S) -> dict[str, Check]:
    """Run every check (in its own thread), each given ``deadline_s`` seconds
    from now; one that raises, or has not answered by then, is a failed
    :class:`Check`."""
    runs = {name: _runner.start(name, check) for name, check in _CHECKS.items()}
    deadline = time.monotonic() + deadline_s
    results: dict[str, Check] = {}
    for name, (future, since) in runs.items():
        try:
            results[name] = future.result(timeout=max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            waited = time.monotonic() - since
            results[name] = Check(ok=False, error=f"did not answer within {waited:.1f} s")
        except Exception as exc:
            results[name] = Check(ok=False, error=f"{type(exc).__name__}: {exc}".strip())
    return results


def readyz(request: HttpRequest) -> JsonResponse:
    checks = readiness_checks()
    body = {name: check.as_dict() for name, check in checks.items()}
    failing = [name for name, check in checks.items() if not check.ok]
    if not failing:
        return JsonResponse({"status": "ready", "checks": body})
    log.warning("not ready: %s", ", ".join(f"{n} ({checks[n].error})" for n in failing))
    return JsonResponse(
        {
            "error": f"Not ready: {', '.join(failing)}",
            "details": [{"check": n, "error": checks[n].error} for n in failing],
            "checks": body,
        },
        status=503,
    )
