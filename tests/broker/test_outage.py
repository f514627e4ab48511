"""The Redis broker with its Redis unreachable (a proxy in front of the real one,
cut): a claim pauses (backoff, one log line at the outage's start and one at its
end) and returns nothing instead of raising (django-q2's pusher would sleep 10 s
and be replaced); a heartbeat fails quietly (django-q2 would log each one); once
Redis answers, the waiting task is claimed; an acknowledgement waits for Redis
instead of failing."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pytest
import redis
from django_q.conf import Conf

from broker.redis_streams import RedisStreamsBroker
from core.outage import Backoff
from tests.broker.test_brokers import REDIS_URL, batch_task
from tests.faults.tcpproxy import TcpProxy


@pytest.fixture
def cut_redis(monkeypatch: pytest.MonkeyPatch) -> Iterator[TcpProxy]:
    proxy = TcpProxy(6379).start()
    monkeypatch.setattr(Conf, "POLL", 0.01)
    monkeypatch.setattr(Conf, "REDIS", f"redis://127.0.0.1:{proxy.port}/0")
    Backoff.reset()
    try:
        yield proxy
    finally:
        proxy.stop()
        Backoff.reset()


def _outage_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "telemetron.outage"]


def test_a_claim_pauses_while_redis_is_unreachable_and_resumes(
    cut_redis: TcpProxy, caplog: pytest.LogCaptureFixture
) -> None:
    queue = f"test-{uuid.uuid4().hex}"
    broker = RedisStreamsBroker(queue)
    broker.cluster_id = f"cluster-{uuid.uuid4().hex[:8]}"
    try:
        broker.set_stat(f"{Conf.Q_STAT}:{broker.cluster_id}", "status", 3)
        broker.commit([batch_task("b1")])
        cut_redis.cut()
        started = time.monotonic()
        assert [broker.dequeue() for _ in range(3)] == [None, None, None]  # no exception
        assert 0.2 + 0.4 + 0.8 <= time.monotonic() - started < 5  # the backoff
        broker.set_stat(f"{Conf.Q_STAT}:{broker.cluster_id}", "status", 3)  # a beat: no raise
        cut_redis.heal()
        broker.set_stat(f"{Conf.Q_STAT}:{broker.cluster_id}", "status", 3)
        claimed = broker.dequeue()
        assert claimed is not None and len(claimed) == 1
        lines = _outage_lines(caplog)
        assert len(lines) == 2, lines
        assert lines[0].startswith("the redis is unreachable (ConnectionError")
        assert lines[1].startswith("the redis answers again after")

        # An acknowledgement during an outage waits for Redis to answer.
        cut_redis.cut()
        threading.Timer(1.0, cut_redis.heal).start()
        broker.acknowledge(claimed[0][0])
        assert broker.depth().claimed == 0
    finally:
        client = redis.from_url(REDIS_URL)
        client.delete(f"django_q:{queue}:stream", f"django_q:{queue}:leases")
