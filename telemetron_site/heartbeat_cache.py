"""The cache the worker clusters' heartbeats live in (see cluster_status)."""

from __future__ import annotations

from typing import Any

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.db import DatabaseCache
from django.db import close_old_connections, transaction

__all__ = ["HeartbeatCache"]


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
