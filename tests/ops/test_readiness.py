"""GET /readyz in-process (inline processing: no cluster needed). The database
outage and the cluster check run against a real server in tests/e2e."""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_ready_with_every_check(client: Client) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert set(body["checks"]) == {"database", "broker", "cluster"}
    assert body["checks"]["cluster"] == {"ok": True, "mode": "inline"}
    assert body["checks"]["broker"]["queued"] == 0
