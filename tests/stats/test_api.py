"""GET /stats and GET /stats/{source_id} (DESIGN §3): totals, one source's
counts and first/last times in RFC 3339 UTC, 404 and 400; and GET /healthz."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from plugins.base import U64_MAX
from tests.conftest import event
from tests.support.client import post, stats

pytestmark = pytest.mark.django_db


def send(client: Client, *events: dict[str, Any]) -> None:
    response = post(client, "/ingest/batch", list(events))
    assert response.status_code == 202, response.content
    assert response.json() == {"accepted": len(events), "rejected": []}


def test_totals_of_an_empty_service(client: Client) -> None:
    response = client.get("/stats")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert response.json() == {"sources_count": 0, "events_count": 0}


def test_totals_count_sources_and_events(client: Client) -> None:
    send(client, event(1), event(2), event(1, "Click"))
    assert stats(client) == (200, {"sources_count": 2, "events_count": 3})
    assert post(client, "/ingest", event(3)).status_code == 202
    assert post(client, "/ingest", event(1)).status_code == 202
    assert stats(client) == (200, {"sources_count": 3, "events_count": 5})


def test_source_stats_with_event_type_counts(client: Client) -> None:
    send(
        client,
        event(42, "Heartbeat", "2023-10-27T09:30:00Z"),
        event(42, "Click", "2023-10-27T09:31:00Z"),
        event(42, "Heartbeat", "2023-10-27T09:29:00Z"),
        event(43, "Heartbeat", "2023-10-27T10:00:00Z"),
    )
    send(client, event(42, "Purchase", "2023-10-27T09:35:00Z"))
    assert stats(client, 42) == (
        200,
        {
            "source_id": 42,
            "name": None,  # no Source row for 42
            "total_events": 4,
            "first_event": "2023-10-27T09:29:00Z",
            "last_event": "2023-10-27T09:35:00Z",
            "event_types": {"Click": 1, "Heartbeat": 2, "Purchase": 1},
        },
    )
    assert stats(client, 43)[1]["event_types"] == {"Heartbeat": 1}


@pytest.mark.parametrize(
    ("sent", "shown"),
    [
        ("2023-10-27T09:30:00Z", "2023-10-27T09:30:00Z"),
        ("2023-10-27T11:30:00+02:00", "2023-10-27T09:30:00Z"),
        ("2023-10-27T04:30:00-05:00", "2023-10-27T09:30:00Z"),
        ("2023-10-27T09:30:00.5Z", "2023-10-27T09:30:00.500Z"),
        ("2023-10-27T09:30:00.123456+01:00", "2023-10-27T08:30:00.123456Z"),
        ("2023-10-27T09:30:00.000Z", "2023-10-27T09:30:00Z"),
        ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00Z"),
        ("9999-12-31T23:59:59.999999Z", "9999-12-31T23:59:59.999999Z"),
    ],
)
def test_timestamps_are_utc_with_z_and_a_fraction_only_when_present(
    client: Client, sent: str, shown: str
) -> None:
    send(client, event(5, ts=sent))
    out = stats(client, 5)[1]
    assert (out["first_event"], out["last_event"]) == (shown, shown)


@pytest.mark.parametrize("source_id", [0, 2**63 - 1, 2**63, U64_MAX])
def test_u64_source_ids_round_trip(client: Client, source_id: int) -> None:
    send(client, event(source_id))
    status, out = stats(client, source_id)
    assert status == 200
    assert out["source_id"] == source_id
    assert out["total_events"] == 1


def test_u64_max_and_zero_are_different_sources(client: Client) -> None:
    send(client, event(0, "A"), event(U64_MAX, "B"), event(U64_MAX, "B"))
    assert stats(client, 0)[1]["event_types"] == {"A": 1}
    assert stats(client, U64_MAX)[1]["event_types"] == {"B": 2}
    assert stats(client, U64_MAX - 1)[0] == 404
    assert stats(client) == (200, {"sources_count": 2, "events_count": 3})


def test_leading_zeros_name_the_same_source(client: Client) -> None:
    send(client, event(7))
    assert stats(client, "007")[1]["source_id"] == 7


def test_unknown_source_is_404(client: Client) -> None:
    response = client.get("/stats/99")
    assert response.status_code == 404
    assert response.json() == {"error": "Source id 99 not found", "details": []}
    assert stats(client, U64_MAX) == (
        404,
        {"error": f"Source id {U64_MAX} not found", "details": []},
    )


@pytest.mark.parametrize(
    "raw",
    ["abc", "-1", "1.5", "1e-3", "-1.0", "+1", "0x10", "%20", "1%20", "%EF%BC%91", "\uff11", "1."],
)
def test_non_integer_id_is_400(client: Client, raw: str) -> None:
    response = client.get(f"/stats/{raw}")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error.startswith("Invalid source id: ")
    assert error.endswith("is not a non-negative integer")


@pytest.mark.parametrize(
    ("raw", "sid"), [("7.0", 7), ("7.000", 7), ("0.7e1", 7), ("7e0", 7), ("-0.0", 0), ("00007", 7)]
)
def test_id_of_integer_value_in_decimal_notation_is_that_id(
    client: Client, raw: str, sid: int
) -> None:
    # The document declares an integer (JSON Schema: 7.0 is the integer 7).
    response = client.get(f"/stats/{raw}")
    assert response.status_code == 404
    assert response.json() == {"error": f"Source id {sid} not found", "details": []}


@pytest.mark.parametrize(
    "raw",
    [
        str(U64_MAX + 1),
        str(2**70),
        "9" * 21,
        "9" * 5000,
        "1" + "0" * 4400,
        "1.8446744073709551616e19",
    ],
)
def test_id_over_u64_max_is_400(client: Client, raw: str) -> None:
    response = client.get(f"/stats/{raw}")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error.startswith("Invalid source id: ")
    assert error.endswith(f"is out of range (0 to {U64_MAX})")
    assert len(error) < 200


def test_out_of_range_message_names_the_id(client: Client) -> None:
    response = client.get(f"/stats/{U64_MAX + 1}")
    assert response.json() == {
        "error": f"Invalid source id: {U64_MAX + 1} is out of range (0 to {U64_MAX})",
        "details": [],
    }


def test_healthz_is_200_ok_text(client: Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.content == b"OK"
    assert response["Content-Type"].startswith("text/plain")
