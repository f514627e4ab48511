"""Freed memory handed back to the system, now and then.

A long-running process of the tree (a queue worker folding claims of a few
thousand events, the pusher holding claims, a web worker's request threads)
frees most of what it allocates, but glibc's malloc keeps the freed pages of
its heaps for reuse: the process's resident memory stays at its high-water
mark, and pages of the heap shared copy-on-write with the parent are private
once touched. ``malloc_trim(0)`` gives the heaps' free pages back
(``madvise(MADV_DONTNEED)``, the top of the heap shrunk); it takes well under
a millisecond. :func:`trim_now_and_then` calls it at most once per
``_INTERVAL_S`` per process, so a hot path may call it on every round.

A no-op where the C library has no ``malloc_trim`` (musl, macOS)."""

from __future__ import annotations

import ctypes
import ctypes.util
import time
from collections.abc import Callable

__all__ = ["trim_now_and_then"]

_INTERVAL_S = 1.0

_next_trim = 0.0
_trim: Callable[[int], int] | None = None
_looked_up = False


def _malloc_trim() -> Callable[[int], int] | None:
    global _trim, _looked_up
    if not _looked_up:
        _looked_up = True
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            _trim = libc.malloc_trim
        except (OSError, AttributeError):
            _trim = None
    return _trim


def trim_now_and_then() -> None:
    """``malloc_trim(0)`` if it has not run in this process for a second."""
    global _next_trim
    now = time.monotonic()
    if now < _next_trim:
        return
    _next_trim = now + _INTERVAL_S
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
