"""The Segment tracking API in process (ingest/segment.py): auth, the mapping,
the clock correction, limits, errors, and exactly-once by messageId."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.test import Client

from core.config import Settings
from core.metrics.series import EVENTS_DEDUPLICATED
from ingest.segment import message_map
from sources.live import live_directory
from sources.services import source_create
from tests.support.client import delta, post, rejected_metric, stats

pytestmark = pytest.mark.django_db


@pytest.fixture
def key(db: Any) -> str:
    _, made = source_create(source_id=7, name="app")
    return made.value


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def track(n: int, event: str = "Signed Up", **extra: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "event": event,
        "userId": f"u{n}",
        "messageId": f"m-{n}",
        "properties": {"n": n},
        "timestamp": "2026-11-20T10:00:00.000Z",
        **extra,
    }


def deduplicated() -> float:
    return EVENTS_DEDUPLICATED._value.get()  # type: ignore[attr-defined]


def test_batch_is_200_success_and_counted_by_event_name(client: Client, key: str) -> None:
    sent = {
        "batch": [
            track(1),
            track(2),
            track(3, "Clicked"),
            {"type": "identify", "userId": "u1", "traits": {"plan": "pro"}, "messageId": "i-1"},
        ],
    }
    response = post(client, "/v1/batch", sent, **basic(key))
    assert response.status_code == 200, response.content
    assert response.json() == {"success": True}
    out = stats(client, 7)[1]
    assert out["total_events"] == 4
    assert out["event_types"] == {"Signed Up": 2, "Clicked": 1, "identify": 1}


@pytest.mark.parametrize("call", ["track", "identify", "page", "screen", "group", "alias"])
def test_each_call_endpoint(client: Client, key: str, call: str) -> None:
    message = {"userId": "u1", "event": "Bought", "messageId": f"x-{call}"}
    response = post(client, f"/v1/{call}", {**message, "writeKey": key})
    assert response.status_code == 200, response.content
    expected = "Bought" if call == "track" else call
    assert stats(client, 7)[1]["event_types"] == {expected: 1}


def test_clock_corrected_timestamp_and_the_rest_as_data() -> None:
    received = datetime(2026, 11, 20, 12, 0, 0, tzinfo=UTC)
    message = track(
        1,
        sentAt="2026-11-20T13:00:05Z",
        timestamp="2026-11-20T13:00:00+00:00",
        context={"library": {"name": "x"}},
        anonymousId="a1",
    )
    value = message_map(message, source_id=7, received_at=received)
    # The client's clock is an hour and 5 s ahead: its event was 5 s before receipt.
    assert value == {
        "sourceId": 7,
        "type": "Signed Up",
        "timestamp": "2026-11-20T11:59:55Z",
        "id": "m-1",
        "data": {
            "userId": "u1",
            "anonymousId": "a1",
            "messageId": "m-1",
            "properties": {"n": 1},
            "context": {"library": {"name": "x"}},
            "originalTimestamp": "2026-11-20T13:00:00+00:00",
        },
    }
    # The batch's sentAt when the message has none; originalTimestamp (RudderStack).
    rudder = {"type": "page", "originalTimestamp": "2026-11-20T11:00:00Z", "messageId": "p"}
    value = message_map(rudder, source_id=7, received_at=received, sent_at="2026-11-20T11:00:10Z")
    assert (value["type"], value["timestamp"]) == ("page", "2026-11-20T11:59:50Z")
    # No sentAt: the client's time as it is; no time at all: the time received.
    assert message_map(track(2), source_id=7, received_at=received)["timestamp"] == (
        "2026-11-20T10:00:00Z"
    )
    bare = {"type": "identify", "userId": "u"}
    assert message_map(bare, source_id=7, received_at=received)["timestamp"] == (
        "2026-11-20T12:00:00Z"
    )


def test_stats_show_the_corrected_times(client: Client, key: str) -> None:
    now = datetime.now(UTC)
    ahead = now + timedelta(hours=3)  # the SDK's clock is 3 h fast
    sent = {
        "sentAt": ahead.isoformat(),
        "batch": [
            track(1, timestamp=(ahead - timedelta(minutes=10)).isoformat()),
            track(2, timestamp=(ahead - timedelta(minutes=1)).isoformat()),
        ],
    }
    assert post(client, "/v1/batch", sent, **basic(key)).status_code == 200
    out = stats(client, 7)[1]
    first = datetime.fromisoformat(out["first_event"])
    last = datetime.fromisoformat(out["last_event"])
    assert abs(first - (now - timedelta(minutes=10))) < timedelta(seconds=5)
    assert abs(last - (now - timedelta(minutes=1))) < timedelta(seconds=5)


def test_gzip_body(client: Client, key: str) -> None:
    response = post(client, "/v1/batch", {"batch": [track(1)]}, gzipped=True, **basic(key))
    assert response.status_code == 200
    assert stats(client, 7)[1]["total_events"] == 1


def test_no_key_or_unknown_key_is_401(client: Client, key: str) -> None:
    response = post(client, "/v1/track", track(1))
    assert response.status_code == 401
    assert "write key" in response.json()["error"]
    response = post(client, "/v1/track", {**track(1), "writeKey": "tlw_nope"})
    assert response.status_code == 401
    assert stats(client, 7)[0] == 404


@pytest.mark.parametrize(
    "raw, message",
    [
        (b"{not json", "Invalid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (json.dumps({"batch": {"a": 1}}).encode(), "'batch' must be a JSON array"),
        (json.dumps({"batch": []}).encode(), "empty"),
    ],
)
def test_malformed_body_is_400_json(client: Client, key: str, raw: bytes, message: str) -> None:
    response = post(client, "/v1/batch", raw, **basic(key))
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_bad_messages_are_listed_and_the_others_accepted(client: Client, key: str) -> None:
    bad_time = track(3, timestamp="yesterday")
    sent = {
        "batch": [track(1), {"type": "track", "userId": "u"}, bad_time, {"type": "fly"}, track(5)]
    }
    response = post(client, "/v1/batch", sent, **basic(key))
    assert response.status_code == 400
    body = response.json()
    assert [d["index"] for d in body["details"]] == [1, 2, 3]
    assert "event name" in body["details"][0]["error"]
    assert "ISO 8601" in body["details"][1]["error"]
    assert "type must be one of" in body["details"][2]["error"]
    assert "3 messages refused, 2 accepted" in body["error"]
    assert stats(client, 7)[1]["total_events"] == 2


def test_limits_32kb_per_message_500kb_per_batch(client: Client, key: str) -> None:
    big = track(1, properties={"pad": "x" * (33 * 1024)})
    before = rejected_metric()
    response = post(client, "/v1/track", big, **basic(key))
    assert response.status_code == 400
    assert "32768 bytes" in response.json()["error"]
    response = post(client, "/v1/batch", {"batch": [big, track(2)]}, **basic(key))
    assert delta(before, rejected_metric()) == {"too_large": 2}  # counted once each
    assert response.status_code == 400
    assert response.json()["details"] == [
        {"index": 0, "error": "Invalid message: message exceeds the limit of 32768 bytes"}
    ]
    assert stats(client, 7)[1]["total_events"] == 1
    many = {"batch": [track(i, properties={"pad": "y" * 20000}) for i in range(30)]}
    before = rejected_metric()
    response = post(client, "/v1/batch", many, **basic(key))
    assert delta(before, rejected_metric()) == {"too_large": 1}
    assert response.status_code == 400
    assert "512000 bytes" in response.json()["error"]
    assert stats(client, 7)[1]["total_events"] == 1


def test_a_retried_batch_is_acknowledged_and_not_counted_again(client: Client, key: str) -> None:
    before = deduplicated()
    sent = {"batch": [track(i) for i in range(5)]}
    for _ in range(3):
        response = post(client, "/v1/batch", sent, **basic(key))
        assert response.status_code == 200
    # A repeat inside one batch, and one id of another source, are separate questions.
    post(client, "/v1/batch", {"batch": [track(9), track(9)]}, **basic(key))
    assert stats(client, 7)[1]["total_events"] == 6
    assert deduplicated() - before == 11


def test_native_events_with_id_are_deduplicated(client: Client) -> None:
    before = deduplicated()
    one = {"sourceId": 3, "type": "Heartbeat", "timestamp": "2026-11-20T10:00:00Z", "id": "hb-1"}
    assert post(client, "/ingest", one).status_code == 202
    assert post(client, "/ingest", one).status_code == 202
    other_source = {**one, "sourceId": 4}
    response = post(client, "/ingest/batch", [one, other_source, {**one, "id": "hb-2"}])
    assert response.status_code == 202
    assert response.json() == {"accepted": 3, "rejected": []}
    assert stats(client, 3)[1]["total_events"] == 2
    assert stats(client, 4)[1]["total_events"] == 1
    assert deduplicated() - before == 2


def test_an_id_older_than_the_window_counts_again(
    client: Client, use_config: Callable[..., Settings]
) -> None:
    from broker.models import SeenMessage

    one = {"sourceId": 3, "type": "Heartbeat", "timestamp": "2026-11-20T10:00:00Z", "id": "hb-1"}
    assert post(client, "/ingest", one).status_code == 202
    SeenMessage.objects.update(seen_at=datetime.now(UTC).timestamp() - 25 * 3600)
    assert post(client, "/ingest", one).status_code == 202
    assert stats(client, 3)[1]["total_events"] == 2
    use_config(ingest={"dedup_window": timedelta(hours=48)})
    assert post(client, "/ingest", one).status_code == 202
    assert stats(client, 3)[1]["total_events"] == 2


def test_event_id_must_be_a_non_empty_string(client: Client) -> None:
    bad = {"sourceId": 3, "type": "H", "timestamp": "2026-11-20T10:00:00Z", "id": 5}
    response = post(client, "/ingest", bad)
    assert response.status_code == 400
    assert "id" in response.json()["error"]
    response = post(client, "/ingest", {**bad, "id": ""})
    assert response.status_code == 400


def test_openapi_lists_the_segment_routes(client: Client) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for call in ("batch", "track", "identify", "page", "screen", "group", "alias"):
        assert "post" in paths[f"/v1/{call}"]


def test_a_disabled_source_is_403_and_a_foreign_origin_too(client: Client) -> None:
    _, off = source_create(source_id=8, name="retired", enabled=False)
    response = post(client, "/v1/batch", {"batch": [track(1), track(2)]}, **basic(off.value))
    assert response.status_code == 403
    assert response.json()["error"] == "Source 8 is disabled"
    _, shop = source_create(source_id=9, name="shop", origins=["https://shop.example"])
    live_directory.reset()  # (serve's processes see it within plugins.reload_interval)
    response = post(
        client, "/v1/track", track(1), Origin="https://evil.example", **basic(shop.value)
    )
    assert response.status_code == 403
    response = post(
        client, "/v1/track", track(2), Origin="https://shop.example", **basic(shop.value)
    )
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "https://shop.example"
    assert stats(client, 9)[1]["total_events"] == 1
