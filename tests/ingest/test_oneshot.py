"""ingest.oneshot.Done: threading.Event's contract, as the group commit uses it."""

from __future__ import annotations

import threading
import time

from ingest.oneshot import Done


def test_one_set_wakes_every_waiter_and_later_waits_return_at_once() -> None:
    done = Done()
    woke: list[bool] = []
    waiters = [threading.Thread(target=lambda: woke.append(done.wait(30))) for _ in range(16)]
    for t in waiters:
        t.start()
    time.sleep(0.05)
    assert not done.is_set() and woke == []
    done.set()
    done.set()  # twice: harmless
    for t in waiters:
        t.join(30)
    assert woke == [True] * 16
    assert done.is_set() and done.wait(0) and done.wait()


def test_a_wait_that_times_out_says_so() -> None:
    done = Done()
    start = time.monotonic()
    assert done.wait(0.05) is False
    assert time.monotonic() - start >= 0.04
    assert done.wait(0) is False and done.wait(-1.0) is False
    done.set()
    assert done.wait(0.05) is True
