"""Read-only looks into a real installation's broker, whichever it is: the ORM
broker's tables or the Redis broker's stream and leases (broker/orm.py,
broker/redis_streams.py), as an operator would inspect them."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis

from tests.support.dbread import rows
from tests.support.procs import wait_until

__all__ = ["REDIS_URL", "QueueView", "broker_config"]

REDIS_URL = "redis://127.0.0.1:6379/0"


@contextmanager
def broker_config(kind: str) -> Iterator[dict[str, Any]]:
    """The ``[queue]`` keys of a broker: for Redis a queue name of this test's
    own, its keys deleted afterwards."""
    if kind == "orm":
        yield {"broker": "orm"}
        return
    name = f"test-{uuid.uuid4().hex[:12]}"
    try:
        yield {"broker": "redis", "redis_url": REDIS_URL, "name": name}
    finally:
        client = redis.from_url(REDIS_URL)
        client.delete(f"django_q:{name}:stream", f"django_q:{name}:leases")
        seen = list(client.scan_iter(f"django_q:{name}:seen:*"))  # event ids (exactly-once)
        if seen:
            client.delete(*seen)


class QueueView:
    def __init__(self, database_url: str, queue: dict[str, Any]) -> None:
        self._db = database_url
        self._redis = redis.from_url(REDIS_URL) if queue.get("broker") == "redis" else None
        name = queue.get("name", "telemetron")
        self._stream, self._leases = f"django_q:{name}:stream", f"django_q:{name}:leases"

    def clusters(self, host: str | None = None) -> list[str]:
        """Ids of the clusters with a lease not marked dead (of ``host``, if given)."""
        if self._redis is None:
            found = rows(
                self._db,
                "SELECT cluster_id, host FROM processing_clusterlease"
                " WHERE NOT dead AND stat <> ''",
            )
        else:
            leases = {
                k.decode(): json.loads(v) for k, v in self._redis.hgetall(self._leases).items()
            }
            found = [(k, v["host"]) for k, v in leases.items() if not v["dead"] and v["stat"]]
        return sorted(cid for cid, h in found if host is None or h == host)

    def claims(self) -> dict[str, int]:
        """Unacknowledged tasks per cluster holding them."""
        if self._redis is None:
            return dict(
                rows(
                    self._db,
                    "SELECT owner, COUNT(*) FROM processing_queuedtask"
                    " WHERE owner <> '' GROUP BY owner",
                )
            )
        try:
            summary = self._redis.xpending(self._stream, "workers")
        except redis.ResponseError:
            return {}
        return {c["name"].decode(): int(c["pending"]) for c in summary.get("consumers") or []}

    def length(self) -> int:
        """Tasks in the broker: waiting, claimed or awaiting redelivery."""
        if self._redis is None:
            return int(rows(self._db, "SELECT COUNT(*) FROM processing_queuedtask")[0][0])
        return int(self._redis.xlen(self._stream))

    def wait_empty(self, timeout: float = 60.0) -> None:
        wait_until(lambda: self.length() == 0, timeout=timeout, interval=0.1)
