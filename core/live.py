"""One way to keep a value read from the database live in every process: the
plugin chains (:mod:`plugins.live`) and the sources' directory (:mod:`sources.live`).

With the ingest hot path in mind, :meth:`LiveValue.get` costs one clock reading
and one comparison. Once per interval one caller (the others go on with the
value in hand) runs a small fingerprint query; only when the fingerprint changed
is the value read and built again. While the database cannot be read, the value
in hand is kept (a first read that fails takes a fallback), and the failure is
said once, not at every interval.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Generic, TypeVar

__all__ = ["Fingerprint", "LiveValue"]

T = TypeVar("T")

Fingerprint = tuple[object, ...]


@dataclass(frozen=True, slots=True)
class _State(Generic[T]):
    value: T
    next_check: float  # the clock's value after which the database is asked again
    fingerprint: Fingerprint | None  # what the last check read (None: nothing)
    read_failed: bool = False


class LiveValue(Generic[T]):
    """A subclass writes how to read: ``_interval``, ``_fingerprint``, ``_load``
    and ``_unreadable`` (and, if it wants, ``_checked``)."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock  # a test may turn it
        self._state: _State[T] | None = None
        self._lock = threading.Lock()

    # --- what a live value writes -----------------------------------------------------

    def _interval(self) -> float:
        """Seconds between two fingerprint queries."""
        raise NotImplementedError

    def _fingerprint(self) -> Fingerprint:
        """The small query that changes when the value would (raises when unreadable)."""
        raise NotImplementedError

    def _load(self, fingerprint: Fingerprint, current: T | None) -> T:
        """Read and build the value anew (raises when unreadable); ``current``:
        the value in hand, None before the first."""
        raise NotImplementedError

    def _unreadable(self, exc: Exception, current: T | None, *, first: bool) -> T:
        """The value while the database cannot be read (``exc``); ``first``: the
        failure is new (say so), not the same one at the next interval."""
        raise NotImplementedError

    def _checked(self) -> None:
        """Called after each check, under the lock (nothing by default)."""

    # --- the value --------------------------------------------------------------------

    def get(self) -> T:
        state = self._state
        if state is not None and self.clock() < state.next_check:
            return state.value
        return self._refresh(state)

    def peek(self) -> T | None:
        """The value in hand, without asking the database (None before the first read)."""
        state = self._state
        return None if state is None else state.value

    def pin(self, value: T | None) -> None:
        """Use exactly ``value`` (no reloading) until the next call; None: forget
        the value, so the next :meth:`get` reads the database again (tests)."""
        with self._lock:
            self._state = None if value is None else _State(value, math.inf, None)

    def expire(self) -> None:
        """Ask the database at the next :meth:`get` (tests; an edit in this process)."""
        state = self._state
        if state is not None:
            self._state = replace(state, next_check=0.0)

    def _refresh(self, seen: _State[T] | None) -> T:
        if seen is not None:
            if not self._lock.acquire(blocking=False):
                return seen.value  # another thread is checking; go on meanwhile
        else:
            self._lock.acquire()
        try:
            state = self._state
            if state is not None and self.clock() < state.next_check:
                return state.value
            new = self._state = self._check(state)
            self._checked()
            return new.value
        finally:
            self._lock.release()

    def _check(self, state: _State[T] | None) -> _State[T]:
        next_check = self.clock() + self._interval()
        current = None if state is None else state.value
        try:
            fingerprint = self._fingerprint()
            if state is not None and fingerprint == state.fingerprint:
                return _State(state.value, next_check, fingerprint)
            return _State(self._load(fingerprint, current), next_check, fingerprint)
        except Exception as exc:
            first = state is None or not state.read_failed
            value = self._unreadable(exc, current, first=first)
            known = None if state is None else state.fingerprint
            return _State(value, next_check, known, read_failed=True)
