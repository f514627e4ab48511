"""Sources and access over real HTTP against one real ``manage.py serve`` (two web
workers and a cluster) with ``ingest.auth = "required"`` and ``security.read_auth
= "token"``: every way of passing a key, the 401/403 rules (per index in a batch),
a revoked key refused within the reload interval, a rate limit across the two web
workers (429 + Retry-After, accepted events within rate x window + burst), read
tokens on /stats and /metrics, and a real Prometheus scraping with its token."""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import BASE_CONFIG, event
from tests.support.installations import installed_project
from tests.support.procs import Project, Server, wait_until
from tests.support.prom import parse_exposition
from tests.support.prometheus import prometheus_server

pytestmark = pytest.mark.e2e

INTERVAL = 1.0  # plugins.reload_interval: how soon a revoked key is refused
RATE, BURST = 20.0, 20  # source 3's limit
SECRET = re.compile(r"tl[wr]_[A-Za-z0-9_-]{40}")


@dataclass
class Served:
    project: Project
    server: Server
    shop: str  # source 1's key
    blog: str  # source 2's key
    limited: str  # source 3's key (rate limited)
    stats_token: str
    metrics_token: str

    def get(self, path: str, token: str | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.get(f"{self.server.url}{path}", headers=headers, timeout=30)


def _secret(output: str) -> str:
    [secret] = SECRET.findall(output)
    return secret


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    config = copy.deepcopy(BASE_CONFIG)
    config["http"]["workers"] = 2
    config["ingest"] = {**config["ingest"], "auth": "required"}
    config["security"] = {"read_auth": "token"}
    config["plugins"] = {"reload_interval": INTERVAL}
    with installed_project(tmp_path_factory.mktemp("sources"), config) as project:
        shop = _secret(project.manage("sources", "create", "1", "--name", "shop").stdout)
        blog = _secret(project.manage("sources", "create", "2", "--name", "blog").stdout)
        limited = _secret(
            project.manage(
                "sources",
                "create",
                "3",
                "--name",
                "busy",
                "--rate",
                str(RATE),
                "--burst",
                str(BURST),
            ).stdout
        )
        stats_token = _secret(
            project.manage("tokens", "create", "dashboard", "--scope", "stats").stdout
        )
        metrics_token = _secret(
            project.manage("tokens", "create", "prometheus", "--scope", "metrics").stdout
        )
        server = project.start()
        yield Served(project, server, shop, blog, limited, stats_token, metrics_token)


def _post(served: Served, path: str, body: object, **kwargs: object) -> httpx.Response:
    return httpx.post(f"{served.server.url}{path}", json=body, timeout=30, **kwargs)  # type: ignore[arg-type]


def test_every_way_of_passing_a_key_over_http(served: Served) -> None:
    key = served.shop
    answers = [
        _post(served, "/ingest", event(1, "Bearer"), headers={"Authorization": f"Bearer {key}"}),
        _post(served, "/ingest", event(1, "Basic"), auth=(key, "")),  # Segment SDKs' way
        _post(served, "/ingest", event(1, "Header"), headers={"X-Write-Key": key}),
        _post(served, f"/ingest?key={key}", event(1, "Query")),
        _post(served, "/ingest/batch", [event(1, "Batch")] * 2, auth=(key, "")),
    ]
    assert [a.status_code for a in answers] == [202] * 5

    def counted() -> dict[str, int] | None:
        body = served.get("/stats/1", served.stats_token)
        return body.json()["event_types"] if body.status_code == 200 else None

    types = wait_until(lambda: (t := counted()) and sum(t.values()) >= 6 and t, timeout=60)
    assert types == {"Bearer": 1, "Basic": 1, "Header": 1, "Query": 1, "Batch": 2}
    assert served.get("/stats/1", served.stats_token).json()["name"] == "shop"


def test_401_and_403_rules_over_http(served: Served) -> None:
    assert _post(served, "/ingest", event(2)).status_code == 401
    assert _post(served, "/ingest", event(2), auth=("tlw_made-up", "")).status_code == 401
    foreign = _post(served, "/ingest", event(1), headers={"X-Write-Key": served.blog})
    assert (foreign.status_code, foreign.json()["error"]) == (
        403,
        "The write key is for source 2, not 1",
    )
    batch = _post(
        served,
        "/ingest/batch",
        [event(2, "Mine"), event(1), event(2, "Mine")],
        headers={"X-Write-Key": served.blog},
    )
    assert batch.status_code == 202
    assert batch.json() == {
        "accepted": 2,
        "rejected": [{"index": 1, "error": "The write key is for source 2, not 1"}],
    }
    only_foreign = _post(
        served, "/ingest/batch", [event(1), event(3)], headers={"X-Write-Key": served.blog}
    )
    assert only_foreign.status_code == 403


def test_a_revoked_key_is_refused_within_the_reload_interval(served: Served) -> None:
    project = served.project
    key = _secret(project.manage("sources", "rotate", "2").stdout)
    # the new key works once every web process has reloaded
    wait_until(
        lambda: all(
            _post(served, "/ingest", event(2), auth=(key, "")).status_code == 202 for _ in range(10)
        ),
        timeout=INTERVAL + 30,
    )
    project.manage("sources", "revoke", key[:12], "--noinput")
    revoked_at = time.monotonic()

    def refused_everywhere() -> bool:
        # new connections each time: both web workers answer
        return all(
            _post(served, "/ingest", event(2), auth=(key, "")).status_code == 401 for _ in range(10)
        )

    wait_until(refused_everywhere, timeout=INTERVAL + 30, interval=0.05)
    took = time.monotonic() - revoked_at
    print(f"revoked key refused by every web worker {took:.2f} s after the revoke")
    # the other key of source 2 (the one made with the source) still works
    assert _post(served, "/ingest", event(2), auth=(served.blog, "")).status_code == 202


def test_a_rate_limit_holds_across_both_web_workers(served: Served) -> None:
    before = parse_exposition(served.get("/metrics", served.metrics_token).text)
    deadline = time.monotonic() + 3.0

    def blast(_: int) -> list[httpx.Response]:
        out = []
        with httpx.Client(base_url=served.server.url, timeout=30) as client:
            while time.monotonic() < deadline and len(out) < 400:
                out.append(client.post("/ingest", json=event(3), auth=(served.limited, "")))
        return out

    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = [r for rs in pool.map(blast, range(6)) for r in rs]
    window = time.monotonic() - start
    accepted = sum(r.status_code == 202 for r in answers)
    limited = [r for r in answers if r.status_code == 429]
    assert accepted + len(limited) == len(answers), {r.status_code for r in answers}
    print(f"{len(answers)} requests in {window:.2f} s: {accepted} accepted, {len(limited)} 429")
    assert BURST <= accepted <= RATE * window + BURST
    assert limited and all(int(r.headers["Retry-After"]) >= 1 for r in limited)
    after = parse_exposition(served.get("/metrics", served.metrics_token).text)
    assert after.value("telemetron_events_rejected_total", reason="rate_limited") == before.value(
        "telemetron_events_rejected_total", reason="rate_limited"
    ) + len(limited)
    wait_until(
        lambda: (
            (r := served.get("/stats/3", served.stats_token)).status_code == 200
            and r.json()["total_events"] == accepted
        ),
        timeout=60,
    )


def test_read_tokens_guard_stats_and_metrics_not_health(served: Served) -> None:
    for path in ("/stats", "/stats/1"):
        assert served.get(path).status_code == 401
        assert served.get(path, served.metrics_token).status_code == 403
        assert served.get(path, served.stats_token).status_code == 200
    assert served.get("/metrics").status_code == 401
    assert served.get("/metrics", served.stats_token).status_code == 403
    assert served.get("/metrics", served.metrics_token).status_code == 200
    assert served.get("/healthz").status_code == 200
    assert served.get("/readyz").status_code == 200


def test_a_real_prometheus_scrapes_with_its_bearer_token(served: Served, tmp_path: Path) -> None:
    assert _post(served, "/ingest", event(1, "Scraped"), auth=(served.shop, "")).status_code == 202
    with prometheus_server(
        tmp_path / "prometheus",
        [f"127.0.0.1:{served.server.port}"],
        bearer_token=served.metrics_token,
        anonymous_job=True,
    ) as prometheus:
        wait_until(lambda: prometheus.scalar('up{job="telemetron"}') == 1, timeout=60)
        accepted = wait_until(
            lambda: prometheus.scalar('telemetron_events_accepted_total{job="telemetron"}'),
            timeout=60,
        )
        assert accepted >= 1
        # the same target without the token: scraped, refused (401), so down
        wait_until(lambda: prometheus.scalar('up{job="anonymous"}') == 0, timeout=60)
        assert prometheus.query('telemetron_events_accepted_total{job="anonymous"}') == []
