"""Write keys on /ingest and /ingest/batch (in-process, Django's test client):
every way of passing a key, 401 and 403 rules, per index in a batch."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from core.metrics.series import EVENTS_REJECTED
from sources.live import live_directory
from sources.models import WriteKey
from tests.conftest import event
from tests.sources.conftest import Keys
from tests.support.client import post, stats


def _rejected(reason: str) -> float:
    return float(EVENTS_REJECTED.labels(reason=reason)._value.get())


def _basic(user: str, password: str = "") -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


WAYS = ["bearer", "basic", "header", "query"]


def _send(client: Client, path: str, data: Any, key: str, way: str) -> Any:
    if way == "bearer":
        return post(client, path, data, Authorization=f"Bearer {key}")
    if way == "basic":
        return post(client, path, data, Authorization=_basic(key))
    if way == "header":
        return post(client, path, data, **{"X-Write-Key": key})
    return post(client, f"{path}?key={key}", data)


@pytest.mark.parametrize("way", WAYS)
def test_each_way_of_passing_a_key_is_accepted_and_counted(
    client: Client, keys: Keys, way: str
) -> None:
    assert _send(client, "/ingest", event(2), keys.blog, way).status_code == 202
    batch = _send(client, "/ingest/batch", [event(2), event(2)], keys.blog, way)
    assert (batch.status_code, batch.json()) == (202, {"accepted": 2, "rejected": []})
    assert stats(client, 2)[1]["total_events"] == 3


def test_a_request_without_a_key_is_401_and_names_the_ways(client: Client, keys: Keys) -> None:
    before = _rejected("unauthorized")
    for path, data in (("/ingest", event(2)), ("/ingest/batch", [event(2)])):
        response = post(client, path, data)
        assert response.status_code == 401
        assert response["WWW-Authenticate"].startswith("Bearer")
        assert "Authorization: Bearer" in response.json()["error"]
    assert _rejected("unauthorized") == before + 2
    assert stats(client, 2)[0] == 404


UNKNOWN = "Unknown or revoked write key"
MISSING = "A write key is required"


@pytest.mark.parametrize(
    ("authorization", "error"),
    [
        ("Bearer tlw_not-a-key-anyone-made", UNKNOWN),
        (_basic("tlw_nope", "x"), UNKNOWN),
        ("Bearer ", MISSING),  # a malformed header reads as no key
        ("Basic %%%", MISSING),
        ("Digest x", MISSING),
    ],
)
def test_an_unknown_or_malformed_key_is_401(
    client: Client, keys: Keys, authorization: str, error: str
) -> None:
    response = post(client, "/ingest", event(2), Authorization=authorization)
    assert response.status_code == 401
    assert response.json()["error"].startswith(error)
    assert stats(client, 2)[0] == 404


def test_a_revoked_key_is_401_once_the_directory_reloads(client: Client, keys: Keys) -> None:
    assert post(client, "/ingest", event(2), Authorization=f"Bearer {keys.blog}").status_code == 202
    WriteKey.objects.filter(source__source_id=2).update(
        revoked_at=timezone.now(), updated_at=timezone.now()
    )
    live_directory().expire()  # the reload interval has passed
    response = post(client, "/ingest", event(2), Authorization=f"Bearer {keys.blog}")
    assert (response.status_code, response.json()["error"]) == (
        401,
        "Unknown or revoked write key",
    )


def test_an_event_for_another_source_is_403(client: Client, keys: Keys) -> None:
    before = _rejected("forbidden")
    response = post(client, "/ingest", event(1), Authorization=f"Bearer {keys.blog}")
    assert response.status_code == 403
    assert response.json()["error"] == "The write key is for source 2, not 1"
    assert _rejected("forbidden") == before + 1
    assert stats(client, 1)[0] == 404


def test_a_batch_refuses_foreign_sources_per_index(client: Client, keys: Keys) -> None:
    response = post(
        client,
        "/ingest/batch",
        [event(2), event(1), event(2, type=""), event(7), event(2)],
        Authorization=f"Bearer {keys.blog}",
    )
    assert response.status_code == 202
    body = response.json()
    assert body["accepted"] == 2
    assert [(r["index"], r["error"]) for r in body["rejected"]] == [
        (1, "The write key is for source 2, not 1"),
        (2, body["rejected"][1]["error"]),
        (3, "The write key is for source 2, not 7"),
    ]
    assert "type" in body["rejected"][1]["error"]
    assert stats(client, 2)[1]["total_events"] == 2


def test_a_batch_of_only_foreign_sources_is_403_and_takes_nothing(
    client: Client, keys: Keys
) -> None:
    response = post(
        client, "/ingest/batch", [event(1), event(3)], Authorization=f"Bearer {keys.blog}"
    )
    assert response.status_code == 403
    assert [r["index"] for r in response.json()["details"]] == [0, 1]
    assert stats(client)[1]["events_count"] == 0


def test_a_batch_whose_valid_events_are_all_foreign_is_403_with_the_invalid_ones_listed(
    client: Client, keys: Keys
) -> None:
    # The valid events were refused for access: 403, not the 400 of "no valid event".
    body = [event(1), {"sourceId": 2}, event(2, type="")]
    response = post(client, "/ingest/batch", body, Authorization=f"Bearer {keys.blog}")
    assert response.status_code == 403
    assert [r["index"] for r in response.json()["details"]] == [0, 1, 2]
    assert stats(client)[1]["events_count"] == 0


def test_a_disabled_source_is_403_with_its_own_key(client: Client, keys: Keys) -> None:
    response = post(client, "/ingest", event(3), Authorization=f"Bearer {keys.off}")
    assert (response.status_code, response.json()["error"]) == (403, "Source 3 is disabled")


def test_with_auth_off_a_disabled_source_is_still_403_and_others_need_no_key(
    client: Client, keys: Keys, use_config: Any
) -> None:
    use_config(ingest={"auth": "off"})
    assert post(client, "/ingest", event(3)).status_code == 403
    assert post(client, "/ingest", event(99)).status_code == 202  # no Source row: as before


def test_stats_of_a_source_show_its_name(client: Client, keys: Keys) -> None:
    assert post(client, "/ingest", event(2), Authorization=f"Bearer {keys.blog}").status_code == 202
    assert stats(client, 2)[1]["name"] == "blog"


def test_a_key_marks_its_last_use_without_a_write_per_request(client: Client, keys: Keys) -> None:
    for _ in range(3):
        post(client, "/ingest", event(2), Authorization=f"Bearer {keys.blog}")
    key = WriteKey.objects.get(source__source_id=2)
    assert key.last_used_at is None  # nothing written yet: kept in memory
    live_directory().usage_flush()
    key.refresh_from_db()
    assert key.last_used_at is not None
    assert WriteKey.objects.get(source__source_id=1).last_used_at is None
