"""The django-q2 clusters' heartbeat, and how to read it.

Each cluster's sentinel saves its status (``Stat``) every ``guard_cycle``
(0.5 s) with a 3 s expiry through its broker's ``set_stat``. Our brokers
(:mod:`processing.broker`, :mod:`processing.redis_broker`) keep it in the
cluster's lease, in the database or in Redis, where every process and node reads
it; a broker without ``get_stats`` of its own uses django-q2's cache. A status
found there is at most a few seconds old.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

__all__ = ["ClusterStatus", "cluster_statuses"]


@dataclass(frozen=True)
class ClusterStatus:
    cluster_id: str
    host: str
    status: str
    workers: int
    age_s: float

    @property
    def alive(self) -> bool:
        from django_q.conf import Conf

        return self.status in (Conf.IDLE, Conf.WORKING)


def _packs(broker: Any) -> list[Any]:
    from django_q.brokers import Broker
    from django_q.conf import Conf

    cache = broker.cache
    if type(broker).get_stats is Broker.get_stats and cache is not None:
        # The cache-backed stats, read only: Broker.get_stats() rewrites the
        # key list on every call, a database write per probe.
        keys = cache.get(Conf.Q_STAT) or []
        return list(cache.get_many(keys).values()) if keys else []
    return list(broker.get_stats(f"{Conf.Q_STAT}:*") or [])


def cluster_statuses(broker: Any) -> list[ClusterStatus]:
    """The clusters that reported in the last few seconds."""
    from django.core.signing import BadSignature
    from django_q.signing import SignedPackage

    now = time.time()
    found: list[ClusterStatus] = []
    for pack in _packs(broker):
        if not pack:
            continue
        try:
            stat = SignedPackage.loads(pack)
        except BadSignature:
            continue
        found.append(
            ClusterStatus(
                cluster_id=str(stat.cluster_id),
                host=str(stat.host),
                status=str(stat.status),
                workers=len(stat.workers),
                age_s=round(max(0.0, now - stat.timestamp.timestamp()), 3),
            )
        )
    return found
