"""``GET /readyz``: can this node do its work? Three cheap checks, each a query
or two, so a load balancer may probe every second:

* ``database`` — ``SELECT 1`` on this process's connection (and, on SQLite,
  the database file is still where the configuration says);
* ``broker`` — the django-q2 broker answers (the size of its queue);
* ``cluster`` — a worker cluster reported in the last few seconds (inline
  processing, ``queue.workers = 0``, needs none; see :mod:`broker.leases`).

``200`` with the checks, or ``503`` naming the failing ones.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse

from broker.interface import queue_broker
from broker.leases import cluster_statuses

__all__ = ["Check", "readiness_checks", "readyz"]

log = logging.getLogger("telemetron.readiness")


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
    if connection.vendor == "sqlite":
        name = str(connection.settings_dict["NAME"])
        if not name.startswith(("file:", ":memory:")) and not Path(name).is_file():
            raise RuntimeError(f"database file {name} is missing")
    return {"vendor": connection.vendor}


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


def readiness_checks() -> dict[str, Check]:
    """Run every check; one that raises is a failed :class:`Check`."""
    results: dict[str, Check] = {}
    for name, check in _CHECKS.items():
        try:
            results[name] = Check(ok=True, facts=check())
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
