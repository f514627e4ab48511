"""The Redis broker (broker/redis_streams.py) beyond the contract both brokers
keep (tests/processing/test_brokers.py): `queue.broker = "redis"` selects it, an
acknowledged entry leaves the stream, and a deleted stream is made again."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest
import redis
from django_q.conf import Conf

from broker.redis_streams import RedisStreamsBroker
from tests.support.procs import ROOT

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def streams(monkeypatch: pytest.MonkeyPatch) -> Iterator[RedisStreamsBroker]:
    monkeypatch.setattr(Conf, "POLL", 0.01)
    monkeypatch.setattr(Conf, "REDIS", REDIS_URL)
    b = RedisStreamsBroker(f"test-{uuid.uuid4().hex}")
    try:
        yield b
    finally:
        b.delete_queue()


def test_queue_broker_redis_selects_it() -> None:
    env = {"TELEMETRON_QUEUE__BROKER": "redis", "TELEMETRON_QUEUE__REDIS_URL": REDIS_URL}
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "from django_q.brokers import get_broker;"
            " b = get_broker(); print(type(b).__name__, b.stream)",
        ],
        cwd=ROOT,
        env={**_env_without_queue_keys(), **env},
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.split() == ["RedisStreamsBroker", "django_q:telemetron:stream"]


def _env_without_queue_keys() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEMETRON_QUEUE")}
    return env | {"DJANGO_SETTINGS_MODULE": "tests.settings"}


def test_an_acknowledged_entry_leaves_the_stream(streams: RedisStreamsBroker) -> None:
    streams.enqueue("task")
    ((task_id, body),) = streams.dequeue() or []
    assert body == "task"
    assert redis.from_url(REDIS_URL).xlen(streams.stream) == 1
    streams.acknowledge(task_id)
    assert redis.from_url(REDIS_URL).xlen(streams.stream) == 0


def test_a_deleted_stream_is_made_again(streams: RedisStreamsBroker) -> None:
    streams.enqueue("first")
    assert streams.dequeue()
    streams.connection.delete(streams.stream)  # an operator's DEL, or a FLUSH elsewhere
    streams.enqueue("second")
    assert [body for _, body in streams.dequeue() or []] == ["second"]
