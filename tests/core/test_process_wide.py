"""The one way to make a process-wide object (core/process_wide.py)."""

from __future__ import annotations

import threading
import time

from core.process_wide import process_wide


def test_built_once_on_first_use_even_when_many_threads_ask_at_once() -> None:
    builds: list[object] = []

    @process_wide
    def thing() -> object:
        time.sleep(0.01)  # a slow build: every thread arrives while it runs
        builds.append(object())
        return builds[-1]

    assert not thing.built()
    start = threading.Barrier(8)
    seen: list[object] = []

    def ask() -> None:
        start.wait(30)
        seen.append(thing())

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(builds) == 1 and seen == builds * 8 and thing.built()


def test_reset_forgets_and_override_replaces_until_the_block_ends() -> None:
    counter = iter(range(100))

    @process_wide
    def number() -> int:
        return next(counter)

    assert number() == 0 and number() == 0
    with number.override(42):
        assert number() == 42
    assert number() == 0
    number.reset()
    assert number() == 1
    assert number.__doc__ is None and number.__name__ == "number"  # type: ignore[attr-defined]
