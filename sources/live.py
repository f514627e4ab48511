"""The directory every request uses, kept live as :mod:`core.live` says (like
the plugin chains): a call costs one clock reading and one comparison; once per
``plugins.reload_interval`` one caller runs the fingerprint query, and only when
it changed are the tables read again. A revoked key is refused by every process
within the interval.

Last use of keys and tokens is kept cheaply: a request adds the key's id to a
set; at most once per ``USAGE_WRITE_EVERY_S`` the refreshing caller writes
``last_used_at`` for the ids seen since (one UPDATE per table).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from core.config import get_config
from core.live import Fingerprint, LiveValue
from core.process_wide import process_wide
from sources.directory import Directory

__all__ = ["USAGE_WRITE_EVERY_S", "LiveDirectory", "get_directory", "live_directory"]

log = logging.getLogger("telemetron.sources")

USAGE_WRITE_EVERY_S = 60.0


class LiveDirectory(LiveValue[Directory]):
    def __init__(self, *, interval_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(clock=clock)
        self._interval_s = interval_s
        self._next_usage_write = clock() + USAGE_WRITE_EVERY_S
        self.used_keys: set[int] = set()
        self.used_tokens: set[int] = set()

    def _interval(self) -> float:
        return self._interval_s

    def _fingerprint(self) -> Fingerprint:
        from sources import selectors  # models are importable once Django is set up

        return selectors.access_fingerprint()

    def _load(self, fingerprint: Fingerprint, current: Directory | None) -> Directory:
        from sources import selectors

        return selectors.directory_read()

    def _unreadable(self, exc: Exception, current: Directory | None, *, first: bool) -> Directory:
        if first:
            log.warning("cannot read sources and keys from the database (%s)", exc)
        # Nothing known yet: keys cannot be checked (503), not refused (401).
        return Directory(loaded=False) if current is None else current

    def _checked(self) -> None:
        self._usage_write()

    def _usage_write(self, *, force: bool = False) -> None:
        if not force and self.clock() < self._next_usage_write:
            return
        self._next_usage_write = self.clock() + USAGE_WRITE_EVERY_S
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


@process_wide
def live_directory() -> LiveDirectory:
    return LiveDirectory(interval_s=get_config().plugins.reload_interval)


def get_directory() -> Directory:
    """The directory of this process, at most ``plugins.reload_interval`` old."""
    return live_directory().get()
