"""``GET /readyz``: can this node do its work? Three cheap checks, each a query
or two, so a load balancer may probe every second:

* ``database`` — ``SELECT 1`` on this process's connection (and, on SQLite,
  the database file is still where the configuration says);
* ``broker`` — the django-q2 broker answers (the size of its queue);
* ``cluster`` — a worker cluster reported in the last few seconds (inline
  processing, ``queue.workers = 0``, needs none).

``200`` with the checks, or ``503`` naming the failing ones.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse

from telemetron_site.cluster_status import cluster_statuses
from telemetron_site.queue import broker

__all__ = ["Check", "readiness_checks", "readyz"]

log = logging.getLogger("telemetron.readiness")

Check = dict[str, Any]


def _database() -> Check:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    if connection.vendor == "sqlite":
        name = str(connection.settings_dict["NAME"])
        if not name.startswith(("file:", ":memory:")) and not Path(name).is_file():
            raise RuntimeError(f"database file {name} is missing")
    return {"ok": True, "vendor": connection.vendor}


def _broker_check() -> Check:
    queue = broker()
    return {"ok": True, "broker": queue.info(), "queued": queue.queue_size()}


def _cluster() -> Check:
    if settings.Q_CLUSTER.get("sync"):
        return {"ok": True, "mode": "inline"}
    statuses = cluster_statuses(broker())
    alive = [s for s in statuses if s.alive]
    if not alive:
        seen = ", ".join(f"{s.host} {s.status}" for s in statuses) or "none"
        raise RuntimeError(f"no worker cluster reported in the last few seconds (seen: {seen})")
    return {
        "ok": True,
        "clusters": len(alive),
        "workers": sum(s.workers for s in alive),
        "age_s": min(s.age_s for s in alive),
    }


_CHECKS = {"database": _database, "broker": _broker_check, "cluster": _cluster}


def readiness_checks() -> dict[str, Check]:
    """Run every check; a failing one is ``{"ok": false, "error": ...}``."""
    results: dict[str, Check] = {}
    for name, check in _CHECKS.items():
        try:
            results[name] = check()
        except Exception as exc:
            results[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}".strip()}
    return results


def readyz(request: HttpRequest) -> JsonResponse:
    checks = readiness_checks()
    failing = [name for name, result in checks.items() if not result["ok"]]
    if not failing:
        return JsonResponse({"status": "ready", "checks": checks})
    log.warning("not ready: %s", ", ".join(f"{n} ({checks[n]['error']})" for n in failing))
    return JsonResponse(
        {
            "error": f"Not ready: {', '.join(failing)}",
            "details": [{"check": n, "error": checks[n]["error"]} for n in failing],
            "checks": checks,
        },
        status=503,
    )
