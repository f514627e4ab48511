"""Where the django-q2 cluster's heartbeat lives, and how to read it.

Each cluster's sentinel saves its status (``Stat``) every ``guard_cycle``
(0.5 s) with a 3 s expiry: in Redis with the Redis broker, else in the Django
cache named by ``Q_CLUSTER["cache"]``. Django's default cache is per process,
so with the ORM broker Telemetron gives django-q2 a database cache (table
``telemetron_cache``, created after ``migrate``) that every process and node
shares. A status found there is at most a few seconds old.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CACHE_ALIAS",
    "CACHE_BACKEND",
    "CACHE_TABLE",
    "ClusterStatus",
    "cache_table_create",
    "cluster_statuses",
]

CACHE_ALIAS = "telemetron_cluster"
CACHE_TABLE = "telemetron_cache"
CACHE_BACKEND = "telemetron_site.heartbeat_cache.HeartbeatCache"  # see there


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


def cache_table_create(using: str = "default", **kwargs: Any) -> None:
    """post_migrate receiver: create the cache table if it is missing."""
    from django.core.management import call_command

    call_command("createcachetable", CACHE_TABLE, database=using, verbosity=0)


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
