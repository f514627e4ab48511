"""CORS on /ingest and /ingest/batch (in-process): preflights answered for the
origins a source (or ingest.allowed_origins) allows, never with credentials;
events from an origin their source does not allow refused (403), since a
simple request (sendBeacon) is sent without a preflight."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from tests.conftest import event
from tests.sources.conftest import Keys
from tests.support.client import post, stats

SHOP = "https://shop.example"
EVIL = "https://evil.example"


def _preflight(client: Client, path: str, origin: str) -> Any:
    return client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-write-key",
        },
    )


@pytest.mark.parametrize("path", ["/ingest", "/ingest/batch"])
def test_a_preflight_from_an_allowed_origin_is_answered(
    client: Client, keys: Keys, path: str
) -> None:
    response = _preflight(client, path, SHOP)
    assert response.status_code == 204
    assert response["Access-Control-Allow-Origin"] == SHOP
    assert response["Access-Control-Allow-Methods"] == "POST"
    assert "X-Write-Key" in response["Access-Control-Allow-Headers"]
    assert "Access-Control-Allow-Credentials" not in response
    assert response["Vary"] == "Origin"


def test_a_preflight_from_an_origin_no_source_allows_is_403(client: Client, keys: Keys) -> None:
    response = _preflight(client, "/ingest", EVIL)
    assert response.status_code == 403
    assert "Access-Control-Allow-Origin" not in response
    assert EVIL in response.json()["error"]


def test_a_preflight_with_a_key_asks_that_keys_source(client: Client, keys: Keys) -> None:
    assert _preflight(client, f"/ingest?key={keys.shop}", SHOP).status_code == 204
    assert _preflight(client, f"/ingest?key={keys.blog}", SHOP).status_code == 403


def test_an_event_from_an_allowed_origin_is_accepted_and_readable(
    client: Client, keys: Keys
) -> None:
    response = post(client, f"/ingest?key={keys.shop}", event(1), Origin=SHOP)
    assert response.status_code == 202
    assert response["Access-Control-Allow-Origin"] == SHOP
    assert "Access-Control-Allow-Credentials" not in response


def test_a_beacon_from_a_foreign_origin_is_403_and_not_counted(client: Client, keys: Keys) -> None:
    beacon = post(
        client, f"/ingest?key={keys.shop}", event(1), content_type="text/plain", Origin=EVIL
    )
    assert beacon.status_code == 403
    assert beacon.json()["error"] == f"Origin {EVIL} may not send events of source 1"
    assert "Access-Control-Allow-Origin" not in beacon
    assert stats(client, 1)[0] == 404


def test_an_origin_allowed_for_another_source_does_not_write_this_one(
    client: Client, keys: Keys
) -> None:
    blog = {"X-Write-Key": keys.blog}
    response = post(client, "/ingest/batch", [event(2)], Origin=SHOP, **blog)
    assert response.status_code == 403  # the page may read why: shop.example is a known origin
    assert response["Access-Control-Allow-Origin"] == SHOP
    # a preflight with the key in the query is answered for that key's source alone
    assert _preflight(client, f"/ingest/batch?key={keys.blog}", SHOP).status_code == 403


def test_the_global_list_allows_an_origin_for_every_source(
    client: Client, keys: Keys, use_config: Any
) -> None:
    use_config(ingest={"auth": "required", "allowed_origins": [EVIL]})
    assert _preflight(client, "/ingest", EVIL).status_code == 204
    response = post(client, "/ingest", event(2), Origin=EVIL, **{"X-Write-Key": keys.blog})
    assert response.status_code == 202


def test_the_services_own_origin_is_allowed(client: Client, keys: Keys) -> None:
    response = post(
        client, "/ingest", event(2), Origin="http://testserver", **{"X-Write-Key": keys.blog}
    )
    assert response.status_code == 202


def test_an_options_request_without_origin_says_what_the_path_takes(client: Client) -> None:
    response = client.options("/ingest")
    assert (response.status_code, response["Allow"]) == (204, "POST, OPTIONS")
