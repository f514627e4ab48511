"""Monitoring end to end: a real Prometheus scrapes a real ``manage.py serve``
(2 web workers + a 2-worker cluster, every process merged on /metrics) on
loopback; /metrics passes ``promtool check metrics``; a failing plugin shows on
/metrics; logs are JSON lines; /readyz follows the database.
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.conftest import BASE_CONFIG, event
from tests.support.databases import PG_ADMIN
from tests.support.installations import installed_project
from tests.support.procs import ROOT, Project, Server, wait_until
from tests.support.prom import Exposition, parse_exposition
from tests.support.prometheus import Prometheus, prometheus_server, tool
from tests.support.traffic import post_concurrently

pytestmark = pytest.mark.e2e

ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
ALERT_TESTS = Path(__file__).parent / "promtool" / "alerts_test.yml"
ATTEMPTS = BASE_CONFIG["processor"]["retry_attempts"]
HEARTBEAT_EXPIRY_S = 3  # django_q.status.Stat.save


@dataclass
class Monitored:
    project: Project
    server: Server
    prometheus: Prometheus
    healed_flag: Path

    def scrape(self) -> Exposition:
        response = httpx.get(f"{self.server.url}/metrics", timeout=30)
        assert response.status_code == 200
        return parse_exposition(response.text)


@pytest.fixture(scope="module")
def monitored(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Monitored]:
    workdir = tmp_path_factory.mktemp("monitoring")
    healed = workdir / "healed"
    healed.touch()  # FailingProcessor succeeds while this file exists
    config = copy.deepcopy(BASE_CONFIG)
    config["http"]["workers"] = 2
    config["logging"] = {"level": "INFO", "format": "json"}
    # django-prometheus' django_db_* counters (off by default): promtool checks them too.
    config.setdefault("database", {})["query_metrics"] = True
    config["validation.plugins.SourceIdValidator"] = {"allowed": [1, 2, 3]}
    config["processing.plugins.FailingProcessor"] = {
        "message": "broken on purpose",
        "healed_flag": str(healed),
    }
    with installed_project(workdir, config) as project:
        server = project.start()
        with prometheus_server(
            workdir / "prometheus", [f"127.0.0.1:{server.port}"], rule_files=[ALERTS]
        ) as prometheus:
            yield Monitored(project, server, prometheus, healed)


def _wait_value(prometheus: Prometheus, expr: str, expected: float) -> None:
    wait_until(lambda: prometheus.scalar(expr) == expected, timeout=30, interval=0.5)


def test_prometheus_scrapes_events_and_requests_of_every_process(monitored: Monitored) -> None:
    prometheus, url = monitored.prometheus, monitored.server.url
    before = monitored.scrape()
    singles = [("/ingest", event(1 + i % 2, "Click")) for i in range(20)]
    rejected = [("/ingest", event(9)), ("/ingest", event(10))]
    batch = [("/ingest/batch", [event(3, "View") for _ in range(5)])]

    responses = post_concurrently(url, singles + rejected + batch, clients=6)

    assert [r.status_code for r in responses] == [202] * 20 + [400, 400, 202]
    processed = before.value("telemetron_events_processed_total") + 25
    ingest_requests = before.value("telemetron_http_requests_total", endpoint="/ingest") + 22
    _wait_value(prometheus, 'up{job="telemetron"}', 1)
    _wait_value(prometheus, "telemetron_events_processed_total", processed)
    _wait_value(prometheus, 'telemetron_http_requests_total{endpoint="/ingest"}', ingest_requests)
    _wait_value(
        prometheus,
        "telemetron_events_accepted_total",
        before.value("telemetron_events_accepted_total") + 25,
    )
    _wait_value(
        prometheus,
        'telemetron_events_rejected_total{reason="SourceIdValidator"}',
        before.value("telemetron_events_rejected_total", reason="SourceIdValidator") + 2,
    )
    ok_2xx = 'telemetron_http_requests_duration_seconds_count{endpoint="/ingest",status="2xx"}'
    _wait_value(
        prometheus,
        ok_2xx,
        before.value(
            "telemetron_http_requests_duration_seconds_count", endpoint="/ingest", status="2xx"
        )
        + 20,
    )
    # Batches were processed in the cluster's worker processes, not the web ones.
    assert prometheus.scalar("telemetron_batch_size_count") == monitored.scrape().value(
        "telemetron_batch_size_count"
    )


def test_prometheus_loads_the_example_alert_rules(monitored: Monitored) -> None:
    rules = wait_until(
        lambda: [r for r in monitored.prometheus.rules() if r.get("health") == "ok"] or None,
        timeout=30,
    )
    names = {r["name"] for r in monitored.prometheus.rules()}
    assert names == {
        "TelemetronDeadLettersGrowing",
        "TelemetronQueueBacklog",
        "TelemetronHighErrorRate",
    }
    assert rules


def test_a_failing_plugin_shows_its_errors_and_error_durations(monitored: Monitored) -> None:
    before = monitored.scrape()
    errors = "telemetron_processor_plugin_errors_total"
    durations = "telemetron_processor_plugin_duration_seconds_count"
    monitored.healed_flag.unlink()
    try:
        with monitored.server.client() as client:
            assert client.post("/ingest", json=event(2, "Doomed")).status_code == 202
            wait_until(
                lambda: (
                    monitored.scrape().value(errors, plugin="FailingProcessor")
                    == before.value(errors, plugin="FailingProcessor") + 1
                )
            )
    finally:
        monitored.healed_flag.touch()
    after = monitored.scrape()

    def delta(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    assert delta(durations, plugin="FailingProcessor", status="error") == ATTEMPTS
    assert after.has(
        "telemetron_processor_plugin_duration_seconds_bucket",
        plugin="FailingProcessor",
        status="error",
        le="+Inf",
    )
    assert delta(durations, plugin="StorageProcessor", status="success") == 1
    assert delta("telemetron_dead_letters", status="pending") == 1
    assert delta("telemetron_events_processed_total") == 0  # its batch was not fully processed

    dlq = wait_until(lambda: _json_lines(monitored.server, logger="telemetron.dlq"))
    line = dlq[-1]
    assert line["level"] == "ERROR"
    assert line["plugin"] == "FailingProcessor"
    assert line["attempts"] == ATTEMPTS
    assert line["error"] == "ProcessingError: broken on purpose"
    assert re.fullmatch(r"[0-9a-f]{32}(\.[01])*", line["batch_id"])


def test_metrics_pass_promtool_check_metrics(monitored: Monitored) -> None:
    text = httpx.get(f"{monitored.server.url}/metrics", timeout=30).text
    assert "telemetron_http_requests_total" in text
    assert 'django_db_execute_total{alias="default"' in text  # database.query_metrics

    result = subprocess.run(
        [tool("promtool"), "check", "metrics"], input=text, capture_output=True, text=True
    )

    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_log_lines_are_json_with_structured_fields(monitored: Monitored) -> None:
    with monitored.server.client() as client:
        client.get("/stats/3")

    requests = wait_until(
        lambda: [
            line
            for line in _json_lines(monitored.server, logger="telemetron.request")
            if line["path"] == "/stats/3"
        ]
    )
    line = requests[-1]
    assert line["level"] == "INFO"
    assert line["message"].startswith('"GET /stats/3" 200 ')
    assert (line["method"], line["status"], line["endpoint"]) == ("GET", 200, "/stats/{source_id}")
    assert isinstance(line["duration_ms"], float)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["timestamp"])
    # No line of ours came out in the text format.
    text_lines = re.findall(
        r"^\d{4}-\d\d-\d\d [\d:,]+ [A-Z]+ telemetron", monitored.server.log(), re.MULTILINE
    )
    assert text_lines == []


def test_readyz_is_503_while_the_database_is_unreachable(monitored: Monitored) -> None:
    """Last in this module: it takes the database away from the running server."""
    url = f"{monitored.server.url}/readyz"
    ready = wait_until(lambda: _readyz(url, 200))
    assert ready[1]["checks"]["cluster"]["workers"] == 2

    with _database_unreachable(monitored.project):
        _, body = wait_until(lambda: _readyz(url, 503))
        assert "database" in body["error"]
        assert body["checks"]["database"]["ok"] is False
        assert body["details"][0]["check"] == "database"
        # Outlive the cluster's last heartbeat (3 s expiry): the 200 below then
        # needs a heartbeat saved after the outage, over a new connection.
        time.sleep(HEARTBEAT_EXPIRY_S + 0.5)

    _, body = wait_until(lambda: _readyz(url, 200), timeout=60)
    assert body["status"] == "ready"
    assert all(check["ok"] for check in body["checks"].values())


def test_example_alert_rules_pass_promtool() -> None:
    check = subprocess.run(
        [tool("promtool"), "check", "rules", str(ALERTS)], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS: 3 rules found" in check.stdout
    unit = subprocess.run(
        [tool("promtool"), "test", "rules", str(ALERT_TESTS)], capture_output=True, text=True
    )
    assert unit.returncode == 0, unit.stdout + unit.stderr


# --- helpers -----------------------------------------------------------------------------


def _readyz(url: str, status: int) -> tuple[int, dict[str, Any]] | None:
    """/readyz's answer if it has ``status`` (one request: two could differ)."""
    response = httpx.get(url, timeout=10)
    return (status, response.json()) if response.status_code == status else None


def _json_lines(server: Server, *, logger: str) -> list[dict[str, Any]]:
    found = []
    for raw in server.log().splitlines():
        if raw.startswith("{"):
            line = json.loads(raw)  # every JSON-looking line must parse
            if line.get("logger") == logger:
                found.append(line)
    return found


@contextmanager
def _database_unreachable(project: Project) -> Iterator[None]:
    """SQLite: the database file is moved away. PostgreSQL: the database
    refuses connections and its sessions are terminated."""
    url = project.database_url
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        away = path.with_name(path.name + ".away")
        os.replace(path, away)
        try:
            yield
        finally:
            os.replace(away, path)
        return
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        try:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            yield
        finally:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
