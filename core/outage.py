"""A dependency outage: the database or Redis unreachable, and what the queue's
processes do about it (README, "Dependency outages").

An outage is not a plugin refusing a batch: processing pauses, tries again with
a bounded backoff (:data:`BACKOFF_FIRST_S` doubling to :data:`BACKOFF_MAX_S`),
and spends none of a batch's ``processor.retry_attempts``; nothing is
dead-lettered for it. :func:`store_unavailable` tells the two apart, following
an error's cause and context, so a plugin that raises its own error because
its store is down counts as an outage too.

Each process logs one line when it finds a store unreachable and one when the
store answers again (not one per try), and counts the seconds it waited and
its tries (``telemetron_store_unavailable_seconds_total{store}``,
``telemetron_store_outage_retries_total{store}``).
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from typing import TypeVar

import psycopg
import redis
from django import db

from core.metrics.recording import store_outage_retried

__all__ = [
    "BACKOFF_FIRST_S",
    "BACKOFF_MAX_S",
    "DATABASE",
    "REDIS",
    "Backoff",
    "StoreUnavailable",
    "outage_retry",
    "store_unavailable",
]

log = logging.getLogger("telemetron.outage")

DATABASE = "database"
REDIS = "redis"
BACKOFF_FIRST_S = 0.2
BACKOFF_MAX_S = 5.0

# SQLite's errors that say the file is busy or unreadable now, not that a
# statement is wrong ("no such table" is a bug, not an outage).
_SQLITE_TRANSIENT = ("locked", "busy", "disk i/o error", "unable to open")

T = TypeVar("T")


class StoreUnavailable(Exception):
    """A store stayed unreachable past the time a task may wait for it: the task
    ends without spending an attempt, and its batch is handed out again."""

    def __init__(self, store: str, waited_s: float, error: BaseException) -> None:
        super().__init__(
            f"the {store} is unreachable ({waited_s:.0f} s so far): {type(error).__name__}: {error}"
        )
        self.store = store


def _store_of(exc: BaseException) -> str | None:
    if isinstance(exc, sqlite3.OperationalError):
        text = str(exc).lower()
        return DATABASE if any(word in text for word in _SQLITE_TRANSIENT) else None
    if isinstance(exc, db.OperationalError | db.InterfaceError):
        # Django's wrapper: SQLite's error is its cause (judged above, first).
        cause = exc.__cause__
        return _store_of(cause) if isinstance(cause, sqlite3.Error) else DATABASE
    if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        return DATABASE
    if isinstance(exc, redis.ConnectionError | redis.TimeoutError):
        return REDIS
    return None


def store_unavailable(exc: BaseException) -> str | None:
    """The store ``exc`` says is unreachable (:data:`DATABASE`, :data:`REDIS`),
    or None: any other error (a plugin refusing a batch, a bug). The error's
    cause and context are followed: a plugin's own error raised because its
    store is down is an outage too."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, StoreUnavailable):
            return current.store
        store = _store_of(current)
        if store is not None or isinstance(current, db.OperationalError | db.InterfaceError):
            return store
        current = current.__cause__ or current.__context__
    return None


def _connections_reset() -> None:
    """Close the database connections an outage broke (the next query opens a
    new one); never one inside a transaction."""
    for connection in db.connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            connection.close_if_unusable_or_obsolete()


class Backoff:
    """One process's pause on an unreachable store: the delay before the next
    try (doubling, bounded), the log line at its start and at its end, the
    metrics. One object per loop that tries again (a task, the pusher)."""

    _down: dict[str, float] = {}  # store -> when this process found it unreachable

    def __init__(self, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self._sleep = sleep
        self._delay = BACKOFF_FIRST_S
        self._stores: set[str] = set()  # unreachable in this loop

    def failed(self, store: str, error: BaseException, *, doing: str) -> float:
        """``doing`` failed because ``store`` is unreachable: the first time in
        this process, say so. Returns the delay to wait before the next try."""
        self._stores.add(store)
        if store not in Backoff._down:
            Backoff._down[store] = time.monotonic()
            log.warning(
                "the %s is unreachable (%s: %s): processing pauses and tries again with"
                " backoff; no batch spends an attempt on it",
                store,
                type(error).__name__,
                str(error).strip().splitlines()[0] if str(error).strip() else "",
                extra={"store": store, "outage": "start", "doing": doing},
            )
        return self._delay

    def wait(self, store: str, delay: float) -> None:
        """Wait ``delay`` seconds (counted as ``store``'s) and double the next one."""
        self._sleep(delay)
        store_outage_retried(store, delay)
        self._delay = min(self._delay * 2, BACKOFF_MAX_S)
        _connections_reset()

    def succeeded(self) -> None:
        """The stores this loop found unreachable answer again: say so once."""
        self._delay = BACKOFF_FIRST_S
        for store in sorted(self._stores):
            began = Backoff._down.pop(store, None)
            if began is not None:
                log.warning(
                    "the %s answers again after %.1f s: processing resumes",
                    store,
                    time.monotonic() - began,
                    extra={"store": store, "outage": "end"},
                )
        self._stores.clear()

    @classmethod
    def reset(cls) -> None:
        """Forget every outage (tests)."""
        cls._down.clear()


def outage_retry(
    fn: Callable[[], T],
    *,
    deadline: float,
    doing: str,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """``fn()``; while it fails because a store is unreachable, wait with backoff
    and try again, until ``deadline`` (``time.monotonic()``): then
    :class:`StoreUnavailable`. Any other error is raised at once."""
    backoff = Backoff(sleep=sleep)
    began = time.monotonic()
    while True:
        try:
            result = fn()
        except Exception as exc:
            store = store_unavailable(exc)
            if store is None:
                raise
            if isinstance(exc, StoreUnavailable):
                raise
            delay = backoff.failed(store, exc, doing=doing)
            if time.monotonic() + delay > deadline:
                raise StoreUnavailable(store, time.monotonic() - began, exc) from exc
            backoff.wait(store, delay)
        else:
            backoff.succeeded()
            return result
