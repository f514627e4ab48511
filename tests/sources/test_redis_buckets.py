"""The Redis buckets on a real Redis (keys of this test's own, removed after):
leases never admit more than the bucket gives, all or nothing across sources,
and a Redis that cannot be reached does not stop ingest."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis

from sources.redis_buckets import RedisBuckets
from tests.support.procs import free_port

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def client() -> Iterator[redis.Redis]:
    conn = redis.Redis.from_url(REDIS_URL)
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    conn.test_prefix = prefix  # type: ignore[attr-defined]
    yield conn
    for key in conn.scan_iter(f"{prefix}:*"):
        conn.delete(key)
    conn.close()


def _buckets(client: redis.Redis) -> RedisBuckets:
    return RedisBuckets(client, prefix=client.test_prefix)  # type: ignore[attr-defined]


def test_two_processes_never_take_more_than_the_bucket_holds(client: redis.Redis) -> None:
    # rate so low that no token comes back during the test: the burst is all there is
    web1, web2 = _buckets(client), _buckets(client)
    taken = sum((web1 if i % 2 else web2).take([(9, 1, 0.001, 50)]) == 0.0 for i in range(200))
    assert taken <= 50
    assert taken >= 50 - 2 * (50 // 10)  # at most a lease per process left unused


def test_a_request_takes_every_source_or_none(client: redis.Redis) -> None:
    buckets = _buckets(client)
    assert buckets.take([(2, 10, 0.001, 10)]) == 0.0
    wait = buckets.take([(1, 5, 0.001, 10), (2, 1, 0.001, 10)])
    assert wait > 0
    assert (
        RedisBuckets(client, prefix=client.test_prefix).take(  # type: ignore[attr-defined]
            [(1, 10, 0.001, 10)]
        )
        == 0.0
    )  # source 1 still had its 10: nothing was taken from it


def test_an_unreachable_redis_does_not_limit(caplog: pytest.LogCaptureFixture) -> None:
    down = redis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.5)
    buckets = RedisBuckets(down, prefix="unused")
    assert buckets.take([(1, 1, 1.0, 1)]) == 0.0
    assert buckets.take([(1, 5, 1.0, 1)]) == 0.0
    assert "Redis unreachable" in caplog.text
