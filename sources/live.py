"""The directory every request uses, kept live like the plugin chains
(:mod:`plugins.live`): a call costs one clock reading and one comparison; once
per ``plugins.reload_interval`` one caller (the others go on with the directory
in hand) runs the fingerprint query, and only when it changed are the tables
read again. A revoked key is refused by every process within the interval.

Last use of keys and tokens is kept cheaply: a request adds the key's id to a
set; at most once per ``USAGE_WRITE_EVERY_S`` the refreshing caller writes
``last_used_at`` for the ids seen since (one UPDATE per table).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from core.config import get_config
from core.process_wide import process_wide
from sources.directory import Directory

__all__ = ["USAGE_WRITE_EVERY_S", "LiveDirectory", "get_directory", "live_directory"]

log = logging.getLogger("telemetron.sources")

USAGE_WRITE_EVERY_S = 60.0


class LiveDirectory:
    def __init__(self, *, interval_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval = interval_s
        self._clock = clock
        self._directory: Directory | None = None
        self._fingerprint: tuple[object, ...] | None = None
        self._next_check = 0.0
        self._next_usage_write = clock() + USAGE_WRITE_EVERY_S
        self._lock = threading.Lock()
        self._read_failed = False
        self.used_keys: set[int] = set()
        self.used_tokens: set[int] = set()

    def get(self) -> Directory:
        directory = self._directory
        if directory is not None and self._clock() < self._next_check:
            return directory
        return self._refresh(directory)

    def _refresh(self, seen: Directory | None) -> Directory:
        if seen is not None:
            if not self._lock.acquire(blocking=False):
                return seen  # another thread is checking
        else:
            self._lock.acquire()
        try:
            if self._directory is not None and self._clock() < self._next_check:
                return self._directory
            self._next_check = self._clock() + self._interval
            self._check()
            self._usage_write()
            return self._directory or Directory()
        finally:
            self._lock.release()

    def _check(self) -> None:
        from sources import selectors  # models are importable once Django is set up

        try:
            fingerprint = selectors.access_fingerprint()
            if self._directory is None or fingerprint != self._fingerprint:
                self._directory = selectors.directory_read()
                self._fingerprint = fingerprint
            self._read_failed = False
        except Exception as exc:
            if not self._read_failed:
                log.warning("cannot read sources and keys from the database (%s)", exc)
            self._read_failed = True
            if self._directory is None:
                self._directory = Directory()  # nothing known: every key refused

    def _usage_write(self, *, force: bool = False) -> None:
        if not force and self._clock() < self._next_usage_write:
            return
        self._next_usage_write = self._clock() + USAGE_WRITE_EVERY_S
        keys, self.used_keys = self.used_keys, set()
        tokens, self.used_tokens = self.used_tokens, set()
        if not keys and not tokens:
            return
        from sources.services import usage_record

        try:
            usage_record(key_ids=keys, token_ids=tokens, when=datetime.now(UTC))
        except Exception as exc:
            log.warning("last use of %d keys/tokens not recorded: %s", len(keys | tokens), exc)

    def usage_flush(self) -> None:
        """Write the last uses now, instead of at the next refresh past
        ``USAGE_WRITE_EVERY_S`` (tests)."""
        with self._lock:
            self._usage_write(force=True)

    def expire(self) -> None:
        """Check the database on the next call (tests; an admin edit in this process)."""
        self._next_check = 0.0


@process_wide
def live_directory() -> LiveDirectory:
    return LiveDirectory(interval_s=get_config().plugins.reload_interval)


def get_directory() -> Directory:
    """The directory of this process, at most ``plugins.reload_interval`` old."""
    return live_directory().get()
