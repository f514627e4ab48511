"""Processor failures on a real cluster: a plugin that fails twice then succeeds
is retried to success; one that always fails dead-letters the batch while the
processors after it still run."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import BASE_CONFIG, event
from tests.support.dbread import dead_letters, processed_batches, wait_queue_empty
from tests.support.installations import installed_project
from tests.support.traffic import post_concurrently, wait_for_totals

pytestmark = pytest.mark.integration

FAILURE = "disk on fire"


def _config() -> dict[str, dict[str, Any]]:
    config = copy.deepcopy(BASE_CONFIG)
    del config["processing.plugins.StorageProcessor"]
    config["processor"].update(retry_attempts=3, retry_delay=50)
    # Chain order is file order: Flaky, then Failing, then the stats.
    config["processing.plugins.FlakyProcessor"] = {"fail_times": 2}
    config["processing.plugins.FailingProcessor"] = {"message": FAILURE}
    config["processing.plugins.StorageProcessor"] = {}
    return config


def _samples(exposition: str) -> dict[tuple[str, str, str], float]:
    """(sample name, plugin, status) -> value, from the Prometheus text."""
    return {
        (s.name, s.labels.get("plugin", ""), s.labels.get("status", "")): s.value
        for family in text_string_to_metric_families(exposition)
        for s in family.samples
    }


@pytest.fixture(scope="module")
def processed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """120 events in 6 batch requests from 3 concurrent clients, processed."""
    with installed_project(tmp_path_factory.mktemp("retries"), _config()) as proj:
        server = proj.start()
        posts = [
            ("/ingest/batch", [event(source_id=1 + (b + i) % 4, type="Click") for i in range(20)])
            for b in range(6)
        ]
        responses = post_concurrently(server.url, posts, clients=3)
        assert [r.json()["accepted"] for r in responses] == [20] * 6
        with server.client() as client:
            wait_for_totals(client, events=120)
            wait_queue_empty(proj.database_url)
            stats = client.get("/stats").json()
            metrics = client.get("/metrics").text
        yield {
            "project": proj,
            "log": server.log(),
            "stats": stats,
            "samples": _samples(metrics),
            "letters": dead_letters(proj.database_url),
            "ledger": processed_batches(proj.database_url),
        }


def test_processor_failing_twice_is_retried_to_success_without_dead_letter(
    processed: dict[str, Any],
) -> None:
    batches = len(processed["ledger"])
    assert batches > 0, "no batch was processed"
    assert [x for x in processed["letters"] if x["plugin"] == "FlakyProcessor"] == []
    # It did fail: twice per batch, then succeeded on the third attempt ("Monitoring").
    runs = "telemetron_processor_plugin_duration_seconds_count"
    samples = processed["samples"]
    assert samples[(runs, "FlakyProcessor", "error")] == 2 * batches
    assert samples[(runs, "FlakyProcessor", "success")] == batches
    # Never failed for good: its errors series is there (from the first scrape), at 0.
    assert samples[("telemetron_processor_plugin_errors_total", "FlakyProcessor", "")] == 0


def test_processor_always_failing_dead_letters_every_event_and_the_chain_goes_on(
    processed: dict[str, Any],
) -> None:
    letters, ledger = processed["letters"], processed["ledger"]
    assert {x["plugin"] for x in letters} == {"FailingProcessor"}
    # Every event of every batch is dead-lettered once, under its batch's id (or
    # the id of a part of it, "<batch id>.0.1", when the batch was bisected) ...
    held: dict[str, int] = dict.fromkeys(ledger, 0)
    for letter in letters:
        batch_id = letter["batch_id"].split(".")[0]
        assert batch_id in held, letter["batch_id"]
        held[batch_id] += len(letter["events"])
        assert letter["attempts"] >= 3
        assert letter["error_class"] == "ProcessingError"
        assert letter["error_message"] == FAILURE
        assert letter["status"] == "pending"
        assert all(e["type"] == "Click" for e in letter["events"])
    assert held == ledger
    # ... and the StorageProcessor after the failing one still counted every event.
    assert processed["stats"] == {"sources_count": 4, "events_count": 120}
    assert sum(ledger.values()) == 120
    # Each dead letter is logged on telemetron.dlq.
    dlq_lines = [line for line in processed["log"].splitlines() if "dead-lettered batch" in line]
    assert len(dlq_lines) == len(letters)
    assert all("FailingProcessor" in line and FAILURE in line for line in dlq_lines)
