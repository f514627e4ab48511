"""A one-shot signal for the group commit's waiting requests (ingest/batcher.py)."""

from __future__ import annotations

import _thread

__all__ = ["Done"]


class Done:
    """A one-shot signal that many threads wait for: ``threading.Event``'s
    ``set``/``is_set``/``wait`` on one raw lock, held until ``set`` and passed
    from waiter to waiter. ``threading.Event`` is a ``Condition`` written in
    Python (a lock made per waiter, a Python loop to wake them): with a batch's
    requests waiting on it, ~8 % of a web process's CPU under single events
    (bench/RESULTS.md)."""

    __slots__ = ("_flag", "_lock")

    def __init__(self) -> None:
        self._lock = _thread.allocate_lock()
        self._lock.acquire()
        self._flag = False

    def set(self) -> None:
        if not self._flag:
            self._flag = True
            self._lock.release()

    def is_set(self) -> bool:
        return self._flag

    def wait(self, timeout: float | None = None) -> bool:
        if self._flag:
            return True
        if self._lock.acquire(True, -1 if timeout is None else max(timeout, 0.0)):
            self._lock.release()  # the next waiter's turn
            return True
        return self._flag
