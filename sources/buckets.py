"""Token buckets shared by the web processes of one node (``ingest.rate_limit =
"node"``): a table of slots in a memory-mapped file that ``manage.py serve``
makes for its tree (``$TELEMETRON_RATE_FILE``), taken under a lock (a thread
lock, then ``flock`` on the file), so the limit is exact on the node whatever
web process a request reaches. Without that variable (tests, ``runserver``) the
table is the process's own memory.

A slot is (used, source id, tokens, stamp); stamps are ``CLOCK_MONOTONIC``,
which every process of the machine shares. A bucket holds at most ``burst``
tokens and gains ``rate`` a second; a request of n events takes n tokens from
each of its sources' buckets, all of them or none. A process killed holding
the lock releases it (the kernel drops ``flock`` with the file).
"""

from __future__ import annotations

import fcntl
import logging
import mmap
import os
import struct
import threading
import time
from collections.abc import Callable, Sequence

__all__ = ["ENV", "SLOTS", "BucketTable", "Want"]

log = logging.getLogger("telemetron.sources")

ENV = "TELEMETRON_RATE_FILE"
SLOTS = 1 << 16  # rate-limited sources one node can track (2 MiB)
_SLOT = struct.Struct("<QQdd")
_MASK = SLOTS - 1
_FIB = 11400714819323198485  # 2**64 / golden ratio: spreads ids over the slots

# (source id, events, rate per second, burst)
Want = tuple[int, int, float, int]


class BucketTable:
    def __init__(self, path: str | None = None, *, clock: Callable[[], float] = time.monotonic):
        size = SLOTS * _SLOT.size
        self._clock = clock
        self._fd: int | None = None
        if path:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            if os.fstat(fd).st_size < size:
                os.ftruncate(fd, size)  # zeros: every slot unused
            self._fd = fd
            self._map = mmap.mmap(fd, size)
        else:
            self._map = mmap.mmap(-1, size)
        self._lock = threading.Lock()
        self._full_logged = False

    def _slot(self, source_id: int, burst: int, now: float) -> tuple[int, float, float]:
        """(offset, tokens, stamp) of ``source_id``'s slot, claimed (full) if new;
        offset -1 when every slot is taken."""
        index = ((source_id * _FIB) & 0xFFFFFFFFFFFFFFFF) >> 48 & _MASK
        size, table = _SLOT.size, self._map
        for probe in range(SLOTS):
            offset = ((index + probe) & _MASK) * size
            used, sid, tokens, stamp = _SLOT.unpack_from(table, offset)
            if used and sid == source_id:
                return offset, tokens, stamp
            if not used:
                _SLOT.pack_into(table, offset, 1, source_id, float(burst), now)
                return offset, float(burst), now
        if not self._full_logged:
            log.warning(
                "rate-limit table full (%d sources): source %d not limited", SLOTS, source_id
            )
            self._full_logged = True
        return -1, 0.0, 0.0

    def take(self, wants: Sequence[Want]) -> float:
        """Take every want's tokens, or none; 0.0 when taken, else the seconds
        until they could all be taken."""
        now = self._clock()
        with self._lock:
            fd = self._fd
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                return self._take(wants, now)
            finally:
                if fd is not None:
                    fcntl.flock(fd, fcntl.LOCK_UN)

    def _take(self, wants: Sequence[Want], now: float) -> float:
        fills: list[tuple[int, int, float, int]] = []
        wait = 0.0
        for source_id, n, rate, burst in wants:
            offset, tokens, stamp = self._slot(source_id, burst, now)
            if offset < 0:
                continue
            tokens = min(float(burst), max(tokens, 0.0) + max(now - stamp, 0.0) * rate)
            if tokens < n:
                wait = max(wait, (n - tokens) / rate)
            fills.append((offset, source_id, tokens, n))
        if wait > 0:
            return wait
        for offset, source_id, tokens, n in fills:
            _SLOT.pack_into(self._map, offset, 1, source_id, tokens - n, now)
        return 0.0

    def give_back(self, wants: Sequence[Want]) -> None:
        """Return tokens taken for a request that was then not accepted (a 503)."""
        now = self._clock()
        with self._lock:
            fd = self._fd
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                for source_id, n, rate, burst in wants:
                    offset, tokens, stamp = self._slot(source_id, burst, now)
                    if offset >= 0:
                        tokens = min(float(burst), tokens + max(now - stamp, 0.0) * rate + n)
                        _SLOT.pack_into(self._map, offset, 1, source_id, tokens, now)
            finally:
                if fd is not None:
                    fcntl.flock(fd, fcntl.LOCK_UN)

    def close(self) -> None:
        self._map.close()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
