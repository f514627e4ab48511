"""Rate limits on /ingest and /ingest/batch (in-process): 429 + Retry-After,
nothing of a limited request taken, counted as rate_limited."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client

from core.metrics.series import EVENTS_REJECTED
from sources.buckets import BucketTable
from sources.ratelimit import rate_limiter
from tests.conftest import event
from tests.sources.conftest import Keys
from tests.support.client import delta, post, rejected_metric, stats


@pytest.fixture(autouse=True)
def frozen_buckets(keys: Keys) -> Iterator[None]:
    """Buckets on a clock that stands still: no refill however slow the test runs."""
    with rate_limiter.override(BucketTable(clock=lambda: 1000.0)):
        yield


def _limited() -> float:
    return float(EVENTS_REJECTED.labels(reason="rate_limited")._value.get())


def _shop(client: Client, path: str, data: Any, keys: Keys) -> Any:
    return post(client, path, data, Authorization=f"Bearer {keys.shop}")


def test_over_the_burst_a_request_is_429_with_retry_after(client: Client, keys: Keys) -> None:
    before = _limited()
    assert _shop(client, "/ingest/batch", [event(1)] * 8, keys).status_code == 202
    answers = [_shop(client, "/ingest", event(1), keys).status_code for _ in range(4)]
    assert answers == [202, 202, 429, 429]
    response = _shop(client, "/ingest", event(1), keys)
    assert response.status_code == 429
    assert int(response["Retry-After"]) >= 1
    assert "Rate limit exceeded for source 1" in response.json()["error"]
    accepted = 8 + answers.count(202)
    assert stats(client, 1)[1]["total_events"] == accepted
    assert _limited() == before + answers.count(429) + 1


def test_a_limited_batch_takes_nothing(client: Client, keys: Keys) -> None:
    assert _shop(client, "/ingest/batch", [event(1)] * 7, keys).status_code == 202
    response = _shop(client, "/ingest/batch", [event(1)] * 5, keys)  # 3 tokens left
    assert response.status_code == 429
    assert stats(client, 1)[1]["total_events"] == 7
    # the 3 tokens are still there: a batch of 3 goes through
    assert _shop(client, "/ingest/batch", [event(1)] * 3, keys).status_code == 202


def test_a_batch_over_the_burst_is_413_not_a_retry_forever(client: Client, keys: Keys) -> None:
    before = rejected_metric()
    response = _shop(client, "/ingest/batch", [event(1)] * 11, keys)
    assert response.status_code == 413
    assert "burst of 10" in response.json()["error"]
    # Too large at any rate: not counted as rate-limited (nothing was over the rate).
    assert delta(before, rejected_metric()) == {"too_large": 11}


def test_sources_without_a_limit_are_not_limited(client: Client, keys: Keys) -> None:
    batch = [event(2)] * 500
    for _ in range(3):
        response = post(client, "/ingest/batch", batch, Authorization=f"Bearer {keys.blog}")
        assert response.status_code == 202


def test_with_auth_off_the_events_source_is_limited(
    client: Client, keys: Keys, use_config: Any
) -> None:
    use_config(ingest={"auth": "off"})  # builds a new limiter: freeze that one too
    with rate_limiter.override(BucketTable(clock=lambda: 1000.0)):
        assert post(client, "/ingest/batch", [event(1)] * 10 + [event(2)] * 10).status_code == 202
        response = post(client, "/ingest/batch", [event(2), event(1)])
    assert response.status_code == 429  # source 1's bucket is empty: source 2's event waits too
    assert stats(client, 2)[1]["total_events"] == 10
