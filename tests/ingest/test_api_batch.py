"""POST /ingest/batch (DESIGN §3): 202 with the accepted count and the
rejected indexes; 400 when nothing is accepted or the body is not a JSON array;
413 over size or over ingest.max_batch_events."""

from __future__ import annotations

import gzip
from typing import Any

import pytest
from django.test import Client

from telemetron_site.config import get_config
from tests.conftest import UseChains as UseValidators
from tests.conftest import event
from tests.support.client import body, post, stats

pytestmark = pytest.mark.django_db

MAX_EVENTS = 1000  # ingest.max_batch_events: the default, tests/config.toml keeps it
LIMIT = 1024 * 1024


def batch(client: Client, data: Any, **kw: Any) -> Any:
    return post(client, "/ingest/batch", data, **kw)


def counted(client: Client) -> tuple[int, int]:
    out = stats(client)[1]
    return out["sources_count"], out["events_count"]


def test_settings_are_the_documented_defaults() -> None:
    assert get_config().ingest.max_batch_events == MAX_EVENTS


def test_all_valid_is_202_and_all_counted(client: Client) -> None:
    response = batch(client, [event(1), event(2, "Click"), event(1)])
    assert response.status_code == 202
    assert response.json() == {"accepted": 3, "rejected": []}
    assert counted(client) == (2, 3)
    assert stats(client, 1)[1]["total_events"] == 2


def test_mixed_valid_and_invalid_is_202_with_rejected_indexes(
    client: Client, use_validators: UseValidators
) -> None:
    use_validators(("SourceIdValidator", {"allowed": [1, 2, 3]}))
    missing_type = event(2)
    del missing_type["type"]
    sent = [
        event(1),  # 0
        missing_type,  # 1
        event(4),  # 2: rejected by the validator
        "not an object",  # 3
        event(3, ""),  # 4: empty type
        event(2, ts="2023-10-27T09:30:00"),  # 5: no offset
        event(3, "Click"),  # 6
    ]
    response = batch(client, sent)
    assert response.status_code == 202
    out = response.json()
    assert out["accepted"] == 2
    assert [r["index"] for r in out["rejected"]] == [1, 2, 3, 4, 5]
    errors = {r["index"]: r["error"] for r in out["rejected"]}
    assert errors[1] == "Invalid event: type: Field required"
    assert errors[2] == "Disallowed source_id: 4"
    assert errors[3] == "Invalid event: expected a JSON object"
    assert errors[4].startswith("Invalid event: type: ")
    assert errors[5].startswith("Invalid event: timestamp: ")
    # Only the accepted ones are counted.
    assert counted(client) == (2, 2)
    assert stats(client, 2)[0] == 404


def test_all_invalid_is_400_with_every_rejection(client: Client) -> None:
    response = batch(client, [{}, event(-1), []])
    assert response.status_code == 400
    out = response.json()
    assert out["error"] == "No event accepted"
    assert [d["index"] for d in out["details"]] == [0, 1, 2]
    assert counted(client) == (0, 0)


def test_all_rejected_by_a_validator_is_400(client: Client, use_validators: UseValidators) -> None:
    use_validators(("EventTypeValidator", {"allowed": ["Heartbeat"]}))
    response = batch(client, [event(1, "Click"), event(2, "Purchase")])
    assert response.status_code == 400
    assert response.json()["details"] == [
        {"index": 0, "error": "Disallowed event type: Click"},
        {"index": 1, "error": "Disallowed event type: Purchase"},
    ]


@pytest.mark.parametrize("value", [event(1), {}, "events", 1, None, True])
def test_a_body_that_is_not_an_array_is_400(client: Client, value: Any) -> None:
    response = batch(client, value)
    assert response.status_code == 400
    assert response.json() == {
        "error": "Request body must be a JSON array of events",
        "details": [],
    }
    assert counted(client) == (0, 0)


@pytest.mark.parametrize("raw", [b"", b"[", b"[{]", b"[1,]", b"[NaN]"])
def test_bad_json_is_400(client: Client, raw: bytes) -> None:
    response = batch(client, raw)
    assert response.status_code == 400
    assert response.json()["error"].startswith("Invalid JSON: ")


def test_one_deeply_nested_event_is_rejected_alone(client: Client) -> None:
    """It must not fail the commit (a 503) of the events it would share it with."""
    deep = body(event(2))[:-1] + b', "data": ' + b"[" * 600 + b"]" * 600 + b"}"
    raw = b"[" + body(event(1)) + b"," + deep + b"," + body(event(3)) + b"]"
    response = batch(client, raw)
    assert response.status_code == 202
    out = response.json()
    assert out["accepted"] == 2
    assert [r["index"] for r in out["rejected"]] == [1]
    assert out["rejected"][0]["error"].startswith("Invalid event: data: must not nest")
    assert counted(client) == (2, 2)


def test_json_nested_beyond_the_parser_is_400(client: Client) -> None:
    response = batch(client, b"[" * 100_000 + b"]" * 100_000)
    assert response.status_code == 400
    assert response.json() == {"error": "Invalid JSON: nested too deeply", "details": []}


def test_empty_array_is_400(client: Client) -> None:
    response = batch(client, [])
    assert response.status_code == 400
    assert response.json() == {"error": "Batch is empty: nothing accepted", "details": []}


def test_max_batch_events_is_accepted(client: Client) -> None:
    events = [event(i % 10, f"T{i % 3}") for i in range(MAX_EVENTS)]
    response = batch(client, events)
    assert response.status_code == 202
    assert response.json() == {"accepted": MAX_EVENTS, "rejected": []}
    assert counted(client) == (10, MAX_EVENTS)


def test_over_max_batch_events_is_413(client: Client) -> None:
    response = batch(client, [event(1)] * (MAX_EVENTS + 1))
    assert response.status_code == 413
    assert response.json() == {
        "error": f"Batch has {MAX_EVENTS + 1} events; the limit is {MAX_EVENTS}",
        "details": [],
    }
    assert counted(client) == (0, 0)


def test_over_max_batch_events_counts_invalid_entries_too(client: Client) -> None:
    assert batch(client, [{}] * (MAX_EVENTS + 1)).status_code == 413


def _array_of_size(size: int) -> bytes:
    """A JSON array of one event, padded with spaces to exactly ``size`` bytes."""
    raw = body([event(1)])
    return raw[:-1] + b" " * (size - len(raw)) + b"]"


def test_body_over_max_body_bytes_is_413(client: Client) -> None:
    response = batch(client, _array_of_size(LIMIT + 1))
    assert response.status_code == 413
    assert response.json() == {
        "error": f"Request body exceeds the limit of {LIMIT} bytes",
        "details": [],
    }
    assert batch(client, _array_of_size(LIMIT)).status_code == 202


def test_gzip_batch_and_its_limit_after_decompression(client: Client) -> None:
    response = batch(client, [event(1), event(2)], gzipped=True)
    assert response.status_code == 202
    assert response.json()["accepted"] == 2
    over = gzip.compress(_array_of_size(LIMIT + 1))
    assert batch(client, over, Content_Encoding="gzip").status_code == 413


def test_unknown_content_encoding_is_415(client: Client) -> None:
    response = batch(client, [event(1)], Content_Encoding="br")
    assert response.status_code == 415


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", ""])
def test_body_is_json_whatever_the_content_type(client: Client, content_type: str) -> None:
    response = batch(client, [event(1), event(2)], content_type=content_type)
    assert response.status_code == 202
    assert counted(client) == (2, 2)


def test_events_of_a_batch_over_batch_size_are_all_counted(client: Client) -> None:
    """processor.batch_size is 100 in tests/config.toml: 250 events are three commits."""
    assert get_config().processor.batch_size == 100
    response = batch(client, [event(i) for i in range(250)])
    assert response.json() == {"accepted": 250, "rejected": []}
    assert counted(client) == (250, 250)
