"""GET /readyz in-process (inline processing: no cluster needed). The database
outage and the cluster check run against a real server in tests/e2e."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from django.test import Client

from ops import readiness
from tests.support.procs import wait_until

pytestmark = pytest.mark.django_db


def test_ready_with_every_check(client: Client) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert set(body["checks"]) == {"database", "broker", "cluster"}
    assert body["checks"]["cluster"] == {"ok": True, "mode": "inline"}
    assert body["checks"]["broker"]["queued"] == 0


def test_a_check_that_hangs_fails_within_the_deadline_and_is_not_started_twice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A store that never answers (frozen): /readyz still answers in time, and
    probes meanwhile wait for the one run under way instead of piling up threads."""
    release = threading.Event()
    runs: list[int] = []

    def hangs() -> dict[str, Any]:
        runs.append(1)
        release.wait(30)
        return {"late": True}

    monkeypatch.setitem(readiness._CHECKS, "database", hangs)
    try:
        for _ in range(3):
            started = time.monotonic()
            checks = readiness.readiness_checks()
            assert time.monotonic() - started < readiness.DEADLINE_S + 0.3
            assert not checks["database"].ok
            assert checks["database"].error.startswith("did not answer within")
        assert runs == [1]
    finally:
        release.set()
    wait_until(lambda: readiness.readiness_checks()["database"].ok, timeout=10)
