"""The metric series: names, types and labels as the README's "Monitoring" says; what each
request and batch records; the merge of several processes' files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from telemetron_testplugins import PoisonProcessor

from core.metrics.recording import known_series_init
from ops.metrics.multiproc import (
    dead_processes_mark,
    multiproc_dir_prepare,
    scrape_registry,
)
from ops.middleware import endpoints_known, route_template
from plugins.chains import Chains
from plugins.live import get_chains, reset
from processing.tasks import process_batch
from tests.conftest import UseChains, event
from tests.support.procs import ROOT
from tests.support.prom import Exposition, parse_exposition

pytestmark = pytest.mark.django_db


def scrape(client: Client) -> Exposition:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    return parse_exposition(response.content.decode())


def post_event(client: Client, body: Any) -> int:
    return client.post("/ingest", body, content_type="application/json").status_code


# --- names, types, labels --------------------------------------------------------


def test_the_original_five_series_and_ours_have_their_names_types_and_labels(
    client: Client, use_processors: UseChains
) -> None:
    assert post_event(client, event(1)) == 202
    client.get("/stats/1")
    use_processors(("FailingProcessor", {}))
    process_batch("names", json.dumps([event(1)]), time.time())
    exp = scrape(client)

    expected_types = {
        "telemetron_http_requests": "counter",
        "telemetron_http_requests_duration_seconds": "histogram",
        "telemetron_processor_plugin_errors": "counter",
        "telemetron_processor_plugin_duration_seconds": "histogram",
        "telemetron_events_processed": "counter",
        "telemetron_events_accepted": "counter",
        "telemetron_events_rejected": "counter",
        "telemetron_batch_size": "histogram",
        "telemetron_event_lag_seconds": "histogram",
        "telemetron_queue_depth": "gauge",
        "telemetron_dead_letters": "gauge",
        "telemetron_build_info": "gauge",
    }
    assert {name: exp.types.get(name) for name in expected_types} == expected_types

    label_names = {
        "telemetron_http_requests_total": {"endpoint"},
        "telemetron_http_requests_duration_seconds_count": {"endpoint", "status"},
        "telemetron_processor_plugin_errors_total": {"plugin"},
        "telemetron_processor_plugin_duration_seconds_count": {"plugin", "status"},
        "telemetron_events_processed_total": set(),
        "telemetron_events_accepted_total": set(),
        "telemetron_dead_letters": {"status"},
        "telemetron_build_info": {"version"},
        "telemetron_queue_depth": set(),
    }
    for name, labels in label_names.items():
        sets = exp.label_sets(name)
        assert sets, f"no {name} series"
        assert all(set(s) == labels for s in sets), (name, sets)
    assert {s["status"] for s in exp.label_sets("telemetron_dead_letters")} == {
        "pending",
        "replayed",
        "discarded",
    }
    assert not any(name.endswith("_created") for name, _ in exp.samples)


def test_endpoint_label_is_the_route_template_and_status_the_class(client: Client) -> None:
    before = scrape(client)
    client.get("/stats/7")  # 404: no such source
    client.get("/stats/8")
    client.get("/stats/not-a-number")  # 400
    client.get("/no/such/path")
    after = scrape(client)

    def delta(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    assert delta("telemetron_http_requests_total", endpoint="/stats/{source_id}") == 3
    duration = "telemetron_http_requests_duration_seconds_count"
    assert delta(duration, endpoint="/stats/{source_id}", status="4xx") == 3
    assert delta("telemetron_http_requests_total", endpoint="unmatched") == 1
    endpoints = {s["endpoint"] for s in after.label_sets("telemetron_http_requests_total")}
    assert not any(e.startswith("/stats/") and "{" not in e for e in endpoints), endpoints
    assert after.has("telemetron_http_requests_total", endpoint="/metrics")


@pytest.mark.parametrize(
    ("route", "template"),
    [
        ("ingest", "/ingest"),
        ("stats/<source_id>", "/stats/{source_id}"),
        ("stats/<int:source_id>", "/stats/{source_id}"),
        ("admin/", "/admin/"),
        ("^static/(?P<path>.+)$", "/static/{path}"),
    ],
)
def test_route_template(route: str, template: str) -> None:
    assert route_template(route) == template


# --- what ingest and processing record ---------------------------------------------------


def test_ingest_counts_accepted_and_rejected_events(client: Client) -> None:
    before = scrape(client)
    assert post_event(client, event(1)) == 202
    assert post_event(client, [event(2), {"sourceId": -1}, event(3)]) == 400  # not an object
    response = client.post(
        "/ingest/batch", [event(2), {"sourceId": -1}, event(3)], content_type="application/json"
    )
    assert response.status_code == 202
    assert post_event(client, b"{not json") == 400
    after = scrape(client)

    def delta(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    assert delta("telemetron_events_accepted_total") == 3
    assert delta("telemetron_events_rejected_total", reason="invalid") == 3
    # Inline processing (tests/config.toml): each batch went through the chain.
    assert delta("telemetron_events_processed_total") == 3
    assert delta("telemetron_batch_size_count") == 2
    assert delta("telemetron_batch_size_sum") == 3


def test_failing_plugin_records_errors_and_error_durations(
    client: Client, use_processors: UseChains
) -> None:
    before = scrape(client)
    use_processors(("FailingProcessor", {"message": "broken on purpose"}))
    report = process_batch("fail", json.dumps([event(1)]), time.time())
    assert report.failed == ["FailingProcessor"]
    after = scrape(client)

    def delta(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    attempts = 3  # processor.retry_attempts in tests/config.toml
    assert delta("telemetron_processor_plugin_errors_total", plugin="FailingProcessor") == 1
    duration = "telemetron_processor_plugin_duration_seconds_count"
    assert delta(duration, plugin="FailingProcessor", status="error") == attempts
    assert delta(duration, plugin="FailingProcessor", status="success") == 0
    assert delta("telemetron_dead_letters", status="pending") == 1


def test_processed_batch_records_size_lag_and_processed_events(client: Client) -> None:
    before = scrape(client)
    wire = [event(5, ts="2024-01-01T00:00:00Z") for _ in range(4)]
    process_batch("lag-batch", json.dumps(wire), time.time() - 2.0)  # enqueued 2 s ago
    after = scrape(client)

    def delta(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    assert delta("telemetron_events_processed_total") == 4
    assert delta("telemetron_batch_size_bucket", le="2.0") == 0
    assert delta("telemetron_batch_size_bucket", le="5.0") == 1
    assert delta("telemetron_event_lag_seconds_bucket", le="1.0") == 0
    assert delta("telemetron_event_lag_seconds_bucket", le="2.5") == 1
    duration = "telemetron_processor_plugin_duration_seconds_count"
    assert delta(duration, plugin="StorageProcessor", status="success") == 1


def test_after_a_bisection_the_events_outside_the_dead_letters_count_as_processed(
    client: Client,
) -> None:
    chains = get_chains()
    poison = PoisonProcessor(PoisonProcessor.Params())
    reset(Chains(validators=chains.validators, processors=(*chains.processors, poison)))
    before = scrape(client)
    try:
        wire = [event(6, "Click") for _ in range(7)] + [event(6, "Poison")]
        process_batch("poisoned", json.dumps(wire), time.time())
    finally:
        reset()
    after = scrape(client)

    def delta(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    assert delta("telemetron_events_processed_total") == 7
    assert delta("telemetron_processor_plugin_errors_total", plugin="PoisonProcessor") == 1
    assert delta("telemetron_batch_size_sum") == 8
    duration = "telemetron_processor_plugin_duration_seconds_count"
    # 3 attempts on the whole batch, then one run per part of the bisection (2 per level).
    assert delta(duration, plugin="PoisonProcessor", status="error") == 3 + 3
    assert delta(duration, plugin="PoisonProcessor", status="success") == 3


# --- several processes ----------------------------------------------------------------

_CHILD = """
import sys
from prometheus_client import Gauge
from core.metrics import recording
recording.events_accepted(int(sys.argv[1]))
recording.plugin_failed("FailingProcessor")
Gauge("telemetron_test_live", "a live gauge", multiprocess_mode="livesum").set(1)
"""


def _run_child(metrics_dir: Path, count: int) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    subprocess.run(
        [sys.executable, "-c", _CHILD, str(count)], env=env, cwd=ROOT, check=True, timeout=60
    )


def test_series_of_other_processes_are_merged_on_metrics(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    metrics_dir, created = multiproc_dir_prepare(tmp_path / "metrics")
    assert not created and not list(metrics_dir.iterdir())
    _run_child(metrics_dir, 3)
    _run_child(metrics_dir, 4)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(metrics_dir))

    exp = scrape(client)  # the web view, reading the other processes' files

    assert exp.value("telemetron_events_accepted_total") == 7
    assert exp.value("telemetron_processor_plugin_errors_total", plugin="FailingProcessor") == 2
    assert exp.value("telemetron_dead_letters", status="pending") == 0  # scrape-time gauges too
    # The two children have exited: their live gauge is gone, counters stay.
    assert not exp.has("telemetron_test_live")


def test_dead_processes_lose_live_gauges_and_keep_counters(tmp_path: Path) -> None:
    metrics_dir, _ = multiproc_dir_prepare(tmp_path)
    _run_child(metrics_dir, 5)
    live_files = list(metrics_dir.glob("gauge_livesum_*.db"))
    assert len(live_files) == 1

    dead = dead_processes_mark(metrics_dir)

    assert dead == [int(live_files[0].stem.rsplit("_", 1)[1])]
    assert not list(metrics_dir.glob("gauge_livesum_*.db"))
    from prometheus_client import generate_latest

    exp = parse_exposition(generate_latest(scrape_registry(metrics_dir)).decode())
    assert exp.value("telemetron_events_accepted_total") == 5


def test_a_new_process_tree_starts_from_an_empty_directory(tmp_path: Path) -> None:
    metrics_dir, _ = multiproc_dir_prepare(tmp_path)
    _run_child(metrics_dir, 2)
    assert list(metrics_dir.glob("*.db"))

    again, created = multiproc_dir_prepare(metrics_dir)

    assert again == metrics_dir and not created
    assert not list(metrics_dir.glob("*.db"))


def test_serve_creates_its_own_directory_when_none_is_configured() -> None:
    path, created = multiproc_dir_prepare(None)
    try:
        assert created and path.is_dir() and not list(path.iterdir())
    finally:
        path.rmdir()


# --- known series at zero ------------------------------------------------------------


def test_known_series_exist_at_zero_before_anything_is_recorded(client: Client) -> None:
    known_series_init(
        validators=["ZeroValidator"], processors=["ZeroProcessor"], endpoints=["/zero"]
    )
    exp = scrape(client)

    def at_zero(name: str, **labels: str) -> bool:
        return exp.has(name, **labels) and exp.value(name, **labels) == 0

    assert at_zero("telemetron_events_rejected_total", reason="ZeroValidator")
    assert at_zero("telemetron_processor_plugin_errors_total", plugin="ZeroProcessor")
    for status in ("success", "error"):
        duration = "telemetron_processor_plugin_duration_seconds_count"
        assert at_zero(duration, plugin="ZeroProcessor", status=status)
    assert at_zero("telemetron_http_requests_total", endpoint="/zero")
    for status_class in ("2xx", "4xx", "5xx"):
        duration = "telemetron_http_requests_duration_seconds_count"
        assert at_zero(duration, endpoint="/zero", status=status_class)


def test_metrics_exports_the_live_chains_plugins_every_reason_and_endpoint(
    client: Client,
) -> None:
    poison = PoisonProcessor(PoisonProcessor.Params())
    reset(Chains(validators=(), processors=(poison,)))  # as a hot reload would
    exp = scrape(client)
    assert exp.has("telemetron_processor_plugin_errors_total", plugin="PoisonProcessor")
    for reason in ("invalid", "forbidden", "rate_limited", "too_large", "unauthorized"):
        assert exp.has("telemetron_events_rejected_total", reason=reason)
    endpoints = {labels["endpoint"] for labels in exp.label_sets("telemetron_http_requests_total")}
    assert endpoints >= {
        "/ingest",
        "/ingest/batch",
        "/stats",
        "/stats/{source_id}",
        "/healthz",
        "/readyz",
        "/metrics",
        "/docs",
        "/openapi.json",
        "unmatched",
    }


def test_endpoints_known_are_the_middlewares_labels() -> None:
    assert endpoints_known()[-1] == "unmatched"
    assert "/stats/{source_id}" in endpoints_known()
    assert "/" not in endpoints_known()  # django-ninja's empty root route
    # The admin site's own routes are left out (a URL of ours under /admin/ is not).
    assert not {"/admin/login/", "/admin/{app_label}/"} & set(endpoints_known())
