"""The WebhookProcessor in a real `serve` against a real receiver on loopback: the
receiver fails the first deliveries (5xx, then a timeout: it took the events but
answered too late), the batch is retried, bisected and dead-lettered; once the
receiver is fixed, `manage.py dlq replay` delivers every event, each delivery
signed, and every duplicate is recognisable by its Idempotency-Key."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.conftest import BASE_CONFIG, event
from tests.support.dbread import dead_letters, wait_queue_empty
from tests.support.procs import Project, wait_until
from tests.support.receiver import Delivery, receiver_running
from tests.support.traffic import wait_for_totals

pytestmark = pytest.mark.integration

SECRET = "integration-secret-0123456789"
EVENTS = 8


def _pending_events(project: Project) -> int:
    return sum(
        len(d["events"])
        for d in dead_letters(project.database_url)
        if d["plugin"] == "WebhookProcessor" and d["status"] == "pending"
    )


def _first_seen(deliveries: list[Delivery]) -> dict[int, str]:
    """What a receiver keeps, deduplicating as the README says: a delivery whose key
    it took before, or whose key extends one it took (``K.0.1`` of ``K``: a part
    of that batch), holds nothing new. Returns event -> the key it was taken with."""
    taken_keys: list[str] = []
    kept: dict[int, str] = {}
    for d in deliveries:
        assert d.key is not None
        duplicate = any(d.key == k or d.key.startswith(k + ".") for k in taken_keys)
        taken_keys.append(d.key)
        for e in d.body["events"]:
            if duplicate:
                assert e["data"]["i"] in kept, f"{d.key} holds an event never taken: {e}"
            else:
                assert e["data"]["i"] not in kept, f"{d.key}: a duplicate the key does not show"
                kept[e["data"]["i"]] = d.key
    return kept


def test_failed_deliveries_are_retried_dead_lettered_and_replayed_with_the_same_key(
    project: Project,
) -> None:
    config: dict[str, dict[str, Any]] = copy.deepcopy(BASE_CONFIG)
    # The webhook waits 3 s; the receiver's late answer comes after 6 s (a loaded
    # machine must not turn its quick answers into timeouts).
    script = ["500", "500", "timeout"]
    with receiver_running(SECRET, script=script, mode="500", late_seconds=6.0) as receiver:
        config["processing.plugins.WebhookProcessor"] = {
            "url": receiver.url,
            "secret": SECRET,
            "timeout": 3.0,
            "headers": {"Authorization": "Bearer e2e"},
        }
        project.config = config
        server = project.start()
        with server.client() as client:
            batch = [event(source_id=3, type="purchase", data={"i": i}) for i in range(EVENTS)]
            assert client.post("/ingest/batch", json=batch).json()["accepted"] == EVENTS
            wait_until(lambda: _pending_events(project) == EVENTS, timeout=60)
            wait_queue_empty(project.database_url)
            wait_for_totals(client, events=EVENTS)  # the StorageProcessor still counted them

        # Three attempts of the whole batch (500, 500, too late), then its parts.
        first = receiver.deliveries[:3]
        batch_id = first[0].key
        assert batch_id is not None and [d.key for d in first] == [batch_id] * 3
        assert [d.answer for d in first] == ["500", "500", "timeout"]
        parts = {d.key for d in receiver.deliveries[3:]}
        assert parts and all(str(k).startswith(batch_id + ".") for k in parts)
        letters = dead_letters(project.database_url)
        assert {x["batch_id"] for x in letters} <= parts
        assert all("answered 500" in x["error_message"] for x in letters)

        # Fixed, but the first replayed delivery still fails: that entry stays
        # pending, and the next replay sends it again with the same key.
        receiver.script, receiver.mode = ["503"], "200"
        replay = project.manage("dlq", "replay", "--all", "--noinput", check=False)
        assert replay.returncode == 1, replay.stdout + replay.stderr
        assert f"replayed {len(letters) - 1}, failed 1, skipped 0" in replay.stdout
        refused = receiver.deliveries[-len(letters)]
        assert refused.answer == "503"
        replay = project.manage("dlq", "replay", "--all", "--noinput")
        assert "replayed 1, failed 0, skipped 0" in replay.stdout
        assert (
            receiver.deliveries[-1].key == refused.key and receiver.deliveries[-1].answer == "200"
        )
        assert _pending_events(project) == 0

        deliveries = list(receiver.deliveries)
        assert all(d.signed for d in deliveries)
        assert all(d.headers["Authorization"] == "Bearer e2e" for d in deliveries)
        assert all(d.body["batch_id"] == d.key for d in deliveries)
        # Every event was taken; the late-answered batch's events came again in
        # replayed parts, which their keys (extending the batch id) give away.
        kept = _first_seen([d for d in deliveries if d.taken])
        assert sorted(kept) == list(range(EVENTS))
        assert set(kept.values()) == {batch_id}
        assert server.stop() == 0
