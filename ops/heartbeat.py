"""The django-q2 clusters' heartbeat: where it lives, and how to read it.

Each cluster's sentinel saves its status (``Stat``) every ``guard_cycle``
(0.5 s) with a 3 s expiry: in Redis with the Redis broker, else in the Django
cache named by ``Q_CLUSTER["cache"]``. Django's default cache is per process,
so with the ORM broker the settings give django-q2 a database cache
(``settings.HEARTBEAT_CACHE``, a :class:`HeartbeatCache` whose table
:func:`cache_table_create` makes after ``migrate``) that every process and node
shares. A status found
there is at most a few seconds old.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.db import DatabaseCache
from django.db import close_old_connections, transaction

__all__ = ["ClusterStatus", "HeartbeatCache", "cache_table_create", "cluster_statuses"]


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


class HeartbeatCache(DatabaseCache):
    """Django's database cache, which first drops a connection that broke.

    The sentinel saves its heartbeat outside Django's request cycle, the thing
    that normally closes broken connections: after a database outage it would
    keep failing on its dead connection (and /readyz report the cluster gone)
    until something restarted it. django-q2's ORM broker does the same before
    each use of its queue table.
    """

    @staticmethod
    def _drop_broken_connections() -> None:
        if transaction.get_autocommit():
            close_old_connections()

    def get_many(self, keys: Any, version: int | None = None) -> dict[str, Any]:
        self._drop_broken_connections()
        return super().get_many(keys, version)

    def _base_set(self, mode: Any, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT) -> bool:
        self._drop_broken_connections()
        return bool(super()._base_set(mode, key, value, timeout))  # type: ignore[misc]


def cache_table_create(using: str = "default", **kwargs: Any) -> None:
    """post_migrate receiver: create the heartbeat cache's table if it is missing."""
    from django.core.management import call_command

    table = settings.CACHES[settings.HEARTBEAT_CACHE]["LOCATION"]
    call_command("createcachetable", table, database=using, verbosity=0)


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
