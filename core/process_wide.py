"""One way to make a process-wide object: built on first use, once, whatever the
number of threads asking at the same moment (Django's ``@functools.cache`` on
``_get_cached_resolver``, with the lock ``functools.cache`` does not take: two
batchers built at once would split a process's events between them).

    @process_wide
    def get_store() -> StatsStore:
        return DatabaseStore()

    get_store()                      # built on the first call, then the same object
    get_store.reset()                # forget it: the next call builds a new one
    with get_store.override(other):  # tests: this object until the block ends
        ...

The hot path pays one attribute read and one comparison.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

__all__ = ["ProcessWide", "process_wide"]

T = TypeVar("T")

_UNSET: object = object()


class ProcessWide(Generic[T]):
    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._value: object = _UNSET
        self._lock = threading.Lock()
        functools.update_wrapper(self, factory)

    def __call__(self) -> T:
        value = self._value
        if value is _UNSET:
            with self._lock:
                value = self._value
                if value is _UNSET:
                    value = self._value = self._factory()
        return value  # type: ignore[return-value]

    def built(self) -> bool:
        """True once the object exists (a reset forgets it)."""
        return self._value is not _UNSET

    def reset(self) -> None:
        """Forget the object; the next call builds a new one."""
        with self._lock:
            self._value = _UNSET

    @contextmanager
    def override(self, value: T) -> Iterator[T]:
        """Use ``value`` until the block ends, then what was there before (tests)."""
        with self._lock:
            before, self._value = self._value, value
        try:
            yield value
        finally:
            with self._lock:
                self._value = before


def process_wide(factory: Callable[[], T]) -> ProcessWide[T]:
    """Decorate the function that builds the object (see the module's docstring)."""
    return ProcessWide(factory)
