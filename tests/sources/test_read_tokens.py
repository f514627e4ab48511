"""Read tokens on /stats* and /metrics (security.read_auth = "token");
/healthz and /readyz stay open."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from sources.live import live_directory
from sources.services import credentials_revoke, read_token_create


@pytest.fixture
def tokens(db: Any, use_config: Any) -> dict[str, str]:
    use_config(security={"read_auth": "token"})
    _, stats = read_token_create(name="dashboard", scope="stats")
    _, metrics = read_token_create(name="prometheus", scope="metrics")
    return {"stats": stats.value, "metrics": metrics.value}


def _get(client: Client, path: str, token: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.get(path, headers=headers)


@pytest.mark.parametrize("path", ["/stats", "/stats/1"])
def test_stats_need_a_stats_token(client: Client, tokens: dict[str, str], path: str) -> None:
    assert _get(client, path).status_code == 401
    assert _get(client, path, "tlr_unknown").status_code == 401
    wrong = _get(client, path, tokens["metrics"])
    assert (wrong.status_code, wrong.json()["error"]) == (
        403,
        "This read token's scope is 'metrics', not 'stats'",
    )
    assert _get(client, path, tokens["stats"]).status_code in (200, 404)  # 404: no events yet


def test_metrics_need_a_metrics_token(client: Client, tokens: dict[str, str]) -> None:
    assert _get(client, "/metrics").status_code == 401
    assert _get(client, "/metrics", tokens["stats"]).status_code == 403
    ok = _get(client, "/metrics", tokens["metrics"])
    assert ok.status_code == 200
    assert b"telemetron_events_accepted_total" in ok.content


def test_health_and_readiness_stay_open(client: Client, tokens: dict[str, str]) -> None:
    assert _get(client, "/healthz").status_code == 200
    assert _get(client, "/readyz").status_code in (200, 503)  # no cluster in-process: its check


def test_a_revoked_token_is_refused_after_the_reload(
    client: Client, tokens: dict[str, str]
) -> None:
    from sources.models import ReadToken

    assert _get(client, "/metrics", tokens["metrics"]).status_code == 200
    credentials_revoke(credentials=list(ReadToken.objects.filter(scope="metrics")))
    live_directory().expire()
    assert _get(client, "/metrics", tokens["metrics"]).status_code == 401


def test_with_read_auth_off_no_token_is_needed(client: Client, db: Any) -> None:
    assert _get(client, "/stats").status_code == 200
    assert _get(client, "/metrics").status_code == 200
