"""The per-process batchers (README, "Acknowledgements and backpressure"), on
their own seam: the ``commit`` callable they are given (in production, one
django-q2 task per call). A ``FakeCommit`` records each batch and can be held
closed or made to fail.

GroupCommitBatcher (durable acks): a submit returns once its batch is
committed; concurrent submits share commits of at most ``batch_size`` events;
everyone in a failed commit gets a 503.
BufferedBatcher: bounded buffer (503 when full), flush at ``batch_size`` or
``batch_timeout``, ``close()`` flushes, a failed commit keeps its events."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from broker.commit import CommitOutcomeUnknown
from core.errors import OutcomeUnknown, ServiceUnavailable
from ingest.batcher import BufferedBatcher, GroupCommitBatcher
from tests.support.procs import ROOT, wait_until

WireEvent = dict[str, Any]


def ev(i: int) -> WireEvent:
    return {"sourceId": i, "type": "Heartbeat", "timestamp": "2023-10-27T09:30:00Z", "data": None}


class FakeCommit:
    """Records every call (a list of batches, committed all or none).
    ``hold_first`` blocks the first call until ``release()``; ``fail`` decides,
    per call number (1-based), to raise."""

    def __init__(self, *, hold_first: bool = False, fail: Callable[[int], bool] = lambda n: False):
        self.calls: list[list[list[WireEvent]]] = []  # every attempt: its batches
        self.committed: list[list[WireEvent]] = []  # the batches of the attempts that succeeded
        self.fail = fail
        self._gate = threading.Event()
        if not hold_first:
            self._gate.set()
        self.first_started = threading.Event()
        self._lock = threading.Lock()

    def __call__(self, batches: list[list[WireEvent]], *, deadline: float | None = None) -> None:
        with self._lock:
            self.calls.append([list(b) for b in batches])
            number = len(self.calls)
        if number == 1:
            self.first_started.set()
            assert self._gate.wait(30), "test never released the first commit"
        if self.fail(number):
            raise ConnectionError(f"broker down (call {number})")
        with self._lock:
            self.committed.extend(list(b) for b in batches)

    def release(self) -> None:
        self._gate.set()


class Submitter(threading.Thread):
    """Runs ``batcher.submit(events)`` in its own thread, keeping the outcome."""

    def __init__(self, batcher: GroupCommitBatcher, events: list[WireEvent]) -> None:
        super().__init__(daemon=True)
        self.batcher, self.events = batcher, events
        self.error: BaseException | None = None
        self.returned = False

    def run(self) -> None:
        try:
            self.batcher.submit(self.events)
            self.returned = True
        except BaseException as exc:
            self.error = exc


def joined(batcher: GroupCommitBatcher, event: WireEvent) -> bool:
    """Whether ``event`` is in the batch still open for joining. (A peek at the
    batcher's state: the only way to know a thread has joined before letting
    the commit go, without sleeping and hoping.)"""
    pending = batcher._open
    return pending is not None and any(e is event for e in pending.events)


def start_joined(batcher: GroupCommitBatcher, events: list[WireEvent]) -> list[Submitter]:
    """One thread per event, each started once the previous one has joined."""
    threads = []
    for event in events:
        t = Submitter(batcher, [event])
        t.start()
        threads.append(t)
        wait_until(lambda e=event: joined(batcher, e), timeout=30, interval=0.002)
    return threads


def finish(threads: list[Submitter]) -> None:
    for t in threads:
        t.join(30)
        assert not t.is_alive()


def durable(commit: FakeCommit, **kw: Any) -> GroupCommitBatcher:
    kw.setdefault("batch_size", 8)
    kw.setdefault("linger_s", 0)
    kw.setdefault("wait_timeout_s", 30)
    return GroupCommitBatcher(commit, **kw)


# --- GroupCommitBatcher ------------------------------------------------------------


def test_submit_returns_after_its_commit() -> None:
    commit = FakeCommit()
    batcher = durable(commit)
    batcher.submit([ev(1)])
    assert commit.committed == [[ev(1)]]
    batcher.submit([ev(2), ev(3)])
    assert commit.committed == [[ev(1)], [ev(2), ev(3)]]


def test_concurrent_submits_from_threads_share_commits_of_at_most_batch_size() -> None:
    commit = FakeCommit(hold_first=True)
    batcher = durable(commit, batch_size=8)
    first = Submitter(batcher, [ev(0)])
    first.start()
    assert commit.first_started.wait(30)
    # While the first commit holds the flush lock, 19 requests arrive.
    events = [ev(i) for i in range(1, 20)]
    threads = start_joined(batcher, events)
    assert not any(t.returned for t in [first, *threads])  # nobody is acked before its commit
    commit.release()
    finish([first, *threads])

    assert all(t.returned and t.error is None for t in [first, *threads])
    assert commit.committed[0] == [ev(0)]
    shared = commit.committed[1:]
    assert sorted(len(b) for b in shared) == [3, 8, 8]  # 19 events, 3 commits, none over 8
    assert sorted(e["sourceId"] for b in shared for e in b) == list(range(1, 20))


def test_a_submit_larger_than_batch_size_is_split_in_order_in_one_commit() -> None:
    commit = FakeCommit()
    durable(commit, batch_size=8).submit([ev(i) for i in range(20)])
    assert [len(b) for b in commit.committed] == [8, 8, 4]
    assert [e["sourceId"] for b in commit.committed for e in b] == list(range(20))
    assert len(commit.calls) == 1  # all or none: never a 503 after part of it was committed


def test_a_request_never_shares_a_batch_it_does_not_fit_in_whole() -> None:
    """Its answer must be exact: its events go to one batch (one commit)."""
    commit = FakeCommit(hold_first=True)
    batcher = durable(commit, batch_size=8)
    first = Submitter(batcher, [ev(0)])
    first.start()
    assert commit.first_started.wait(30)
    six = [ev(i) for i in range(1, 7)]
    t6 = Submitter(batcher, six)
    t6.start()
    wait_until(lambda: joined(batcher, six[-1]), timeout=30, interval=0.002)
    four = [ev(i) for i in range(7, 11)]  # 6 + 4 > 8: a batch of its own
    t4 = Submitter(batcher, four)
    t4.start()
    wait_until(lambda: joined(batcher, four[-1]), timeout=30, interval=0.002)
    commit.release()
    finish([first, t6, t4])
    assert all(t.returned for t in (first, t6, t4))
    assert sorted(commit.committed[1:], key=len) == [four, six]


def test_batches_whose_leaders_wait_for_the_flush_lock_share_one_commit() -> None:
    """Group commit: full batches queued behind a commit go in the next one
    together (each its own batch), not one commit each."""
    commit = FakeCommit(hold_first=True)
    batcher = durable(commit, batch_size=2)
    first = Submitter(batcher, [ev(0), ev(1)])
    first.start()
    assert commit.first_started.wait(30)
    full = [Submitter(batcher, [ev(i), ev(i + 1)]) for i in (10, 20, 30)]
    for t in full:
        t.start()
    wait_until(lambda: len(batcher._ready) == 3, timeout=30, interval=0.002)
    assert not any(t.returned for t in full)  # nobody is acked before its commit
    commit.release()
    finish([first, *full])
    assert all(t.returned for t in [first, *full])
    assert len(commit.calls) == 2  # the three queued batches in one commit
    assert sorted(commit.calls[1], key=lambda b: b[0]["sourceId"]) == [
        [ev(i), ev(i + 1)] for i in (10, 20, 30)
    ]


def test_a_failed_commit_gives_every_waiter_service_unavailable(
    caplog: pytest.LogCaptureFixture,
) -> None:
    commit = FakeCommit(hold_first=True, fail=lambda n: n == 2)
    batcher = durable(commit, retry_after=7)
    first = Submitter(batcher, [ev(0)])
    first.start()
    assert commit.first_started.wait(30)
    waiters = start_joined(batcher, [ev(i) for i in range(1, 6)])
    commit.release()
    finish([first, *waiters])

    assert first.returned  # its own commit succeeded
    for t in waiters:
        assert isinstance(t.error, ServiceUnavailable), t.error
        assert t.error.status == 503
        assert t.error.retry_after == 7
    assert commit.calls[1] == [[ev(i) for i in range(1, 6)]]  # one commit for the five
    assert "batch commit of 5 events failed" in caplog.text
    # The batcher goes on: the next commit works.
    batcher.submit([ev(9)])
    assert commit.committed[-1] == [ev(9)]


def test_a_commit_of_unknown_outcome_answers_every_waiter_outcome_unknown() -> None:
    """The broker could not tell whether the commit landed: every request of it
    gets its own answer, not the "nothing taken" 503."""
    deadlines: list[float | None] = []

    def commit(batches: list[list[WireEvent]], *, deadline: float | None = None) -> None:
        deadlines.append(deadline)
        raise CommitOutcomeUnknown("commit abc: TimeoutError", lambda until: None)

    for events in ([ev(1)], [ev(i) for i in range(20)]):  # a batch; a split request
        with pytest.raises(OutcomeUnknown) as raised:
            durable(commit, retry_after=4, wait_timeout_s=5).submit(events)
        response = raised.value.response()
        assert response.status_code == 503
        assert response["Retry-After"] == "4"
        body = json.loads(response.content)
        assert body["error"].startswith("Commit outcome unknown")
        assert "same event ids" in body["error"]
        assert body["details"] == [{"outcome": "unknown"}]
    # The commit is given the request's deadline: its commit_timeout from now.
    assert all(d is not None and 0 < d - time.monotonic() <= 5 for d in deadlines)


def test_a_failed_commit_of_a_split_submit_fails_that_submit() -> None:
    commit = FakeCommit(fail=lambda n: n == 1)
    with pytest.raises(ServiceUnavailable):
        durable(commit, batch_size=2).submit([ev(i) for i in range(5)])
    assert commit.committed == []  # none of its batches


def test_a_waiter_whose_commit_takes_too_long_gets_service_unavailable() -> None:
    commit = FakeCommit(hold_first=True)
    batcher = durable(commit, wait_timeout_s=0.1, retry_after=3)
    first = Submitter(batcher, [ev(0)])
    first.start()
    assert commit.first_started.wait(30)
    leader, follower = start_joined(batcher, [ev(1), ev(2)])
    follower.join(30)  # its wait times out while the first commit is held
    assert isinstance(follower.error, ServiceUnavailable)
    assert follower.error.retry_after == 3
    assert "Timed out" in follower.error.message
    # Its leader, still waiting for the flush lock, gives its batch up as well: no
    # request waits past the commit timeout for a commit that has not begun.
    leader.join(30)
    assert isinstance(leader.error, ServiceUnavailable)
    assert "Timed out" in leader.error.message
    commit.release()
    finish([first, leader])
    assert first.returned
    # The 503s are exact: the batch left before any commit of it.
    assert commit.committed == [[ev(0)]]


def test_a_waiter_whose_batch_is_being_committed_waits_for_the_outcome() -> None:
    """Past the timeout, a batch already sealed for its commit decides the answer
    (a 503 there could be a lie: the commit may still succeed)."""
    gates = [threading.Event(), threading.Event()]
    started: list[threading.Event] = [threading.Event(), threading.Event()]
    calls: list[list[list[WireEvent]]] = []
    timed_out = threading.Event()

    def commit(batches: list[list[WireEvent]], *, deadline: float | None = None) -> None:
        n = len(calls)
        calls.append(batches)
        started[n].set()
        assert gates[n].wait(30)

    def wait(done: threading.Event, timeout: float) -> bool:
        """The joiner's timeout runs out once its batch is sealed (not before:
        that is the other test), whatever the machine's speed."""
        assert started[1].wait(30)
        timed_out.set()
        return done.is_set()

    batcher = GroupCommitBatcher(commit, batch_size=8, linger_s=0, wait_timeout_s=1.0, wait=wait)
    first = Submitter(batcher, [ev(0)])
    first.start()
    assert started[0].wait(30)  # holds the flush lock
    leader, follower = start_joined(batcher, [ev(1), ev(2)])  # one batch, not sealed yet
    gates[0].set()
    assert started[1].wait(30)  # sealed, its commit under way (held)
    assert timed_out.wait(30)  # the follower's timeout ran out
    follower.join(0.5)
    assert follower.is_alive() and follower.error is None  # still waiting: no 503
    gates[1].set()
    finish([first, leader, follower])
    assert all(t.returned for t in (first, leader, follower))
    assert calls[1] == [[ev(1), ev(2)]]


def test_linger_lets_a_lone_request_through() -> None:
    commit = FakeCommit()
    durable(commit, linger_s=0.001).submit([ev(1)])
    assert commit.committed == [[ev(1)]]


# --- BufferedBatcher ----------------------------------------------------------------------

NEVER = 3600.0  # a batch_timeout no test waits for


@pytest.fixture
def buffered() -> Iterator[Callable[..., BufferedBatcher]]:
    """A BufferedBatcher factory; each one is closed after the test."""
    made: list[BufferedBatcher] = []

    def make(commit: FakeCommit, **kw: Any) -> BufferedBatcher:
        kw.setdefault("batch_size", 100)
        kw.setdefault("batch_timeout_s", NEVER)
        kw.setdefault("capacity", 1000)
        kw.setdefault("retry_backoff_s", 0.01)
        batcher = BufferedBatcher(commit, **kw)
        made.append(batcher)
        return batcher

    yield make
    for batcher in made:
        batcher.close(timeout_s=5)


def test_buffered_submit_returns_before_any_commit(
    buffered: Callable[..., BufferedBatcher],
) -> None:
    commit = FakeCommit()
    batcher = buffered(commit)
    batcher.submit([ev(1), ev(2)])
    assert len(batcher) == 2
    batcher.close()
    assert commit.committed == [[ev(1), ev(2)]]


def test_full_buffer_gives_service_unavailable_and_takes_nothing(
    buffered: Callable[..., BufferedBatcher],
) -> None:
    commit = FakeCommit()
    batcher = buffered(commit, capacity=5, retry_after=4)
    batcher.submit([ev(0), ev(1), ev(2)])
    with pytest.raises(ServiceUnavailable) as info:
        batcher.submit([ev(3), ev(4), ev(5)])  # 6 > 5: refused whole
    assert info.value.retry_after == 4
    assert "buffer full (5 events)" in info.value.message
    assert len(batcher) == 3
    batcher.submit([ev(3), ev(4)])  # exactly at capacity is fine
    with pytest.raises(ServiceUnavailable):
        batcher.submit([ev(5)])
    assert len(batcher) == 5
    batcher.close()
    assert commit.committed == [[ev(i) for i in range(5)]]  # nothing refused got in


def test_flush_at_batch_size(buffered: Callable[..., BufferedBatcher]) -> None:
    commit = FakeCommit()
    batcher = buffered(commit, batch_size=3)
    batcher.submit([ev(0), ev(1)])
    batcher.submit([ev(2)])
    wait_until(lambda: commit.committed, timeout=30, interval=0.005)
    assert commit.committed == [[ev(0), ev(1), ev(2)]]  # the first two waited for the third
    batcher.submit([ev(i) for i in range(3, 10)])
    wait_until(lambda: len(commit.committed) == 3, timeout=30, interval=0.005)
    assert commit.committed[1:] == [[ev(3), ev(4), ev(5)], [ev(6), ev(7), ev(8)]]
    assert len(batcher) == 1  # below batch_size, within the timeout: held
    batcher.close()
    assert commit.committed[3:] == [[ev(9)]]


def test_flush_at_batch_timeout(buffered: Callable[..., BufferedBatcher]) -> None:
    commit = FakeCommit()
    batcher = buffered(commit, batch_size=100, batch_timeout_s=0.05)
    batcher.submit([ev(0), ev(1)])
    wait_until(lambda: commit.committed, timeout=30, interval=0.005)
    assert commit.committed == [[ev(0), ev(1)]]
    assert len(batcher) == 0
    batcher.submit([ev(2)])  # a later event gets its own timeout
    wait_until(lambda: len(commit.committed) == 2, timeout=30, interval=0.005)
    assert commit.committed[1] == [ev(2)]


def test_close_flushes_everything_in_batches_and_refuses_more(
    buffered: Callable[..., BufferedBatcher],
) -> None:
    commit = FakeCommit()
    batcher = buffered(commit, batch_size=100, capacity=1000)
    events = [ev(i) for i in range(250)]
    for i in range(0, 250, 50):
        batcher.submit(events[i : i + 50])
    batcher.close()
    assert len(batcher) == 0
    assert [len(b) for b in commit.committed] == [100, 100, 50]
    assert [e for b in commit.committed for e in b] == events
    with pytest.raises(ServiceUnavailable, match="Shutting down"):
        batcher.submit([ev(1)])


def test_close_without_events_returns(buffered: Callable[..., BufferedBatcher]) -> None:
    commit = FakeCommit()
    buffered(commit).close()
    assert commit.calls == []


def test_a_failing_commit_keeps_the_events_and_retries(
    buffered: Callable[..., BufferedBatcher], caplog: pytest.LogCaptureFixture
) -> None:
    commit = FakeCommit(fail=lambda n: n <= 2)
    batcher = buffered(commit, batch_size=2)
    batcher.submit([ev(0), ev(1)])
    wait_until(lambda: commit.committed, timeout=30, interval=0.005)
    assert commit.calls == [[[ev(0), ev(1)]]] * 3  # two failures, then committed
    assert commit.committed == [[ev(0), ev(1)]]  # once
    assert caplog.text.count("batch commit of 2 events failed; will retry") == 2


@pytest.mark.parametrize("landed", [True, False], ids=["landed", "not-landed"])
def test_a_commit_of_unknown_outcome_is_asked_about_not_retried_blindly(
    buffered: Callable[..., BufferedBatcher], landed: bool
) -> None:
    """Buffered: the store tells the outcome only on the third question. A batch
    that landed is not committed again (its events would count twice); one
    that did not is."""
    asked: list[float] = []

    def ask(until: float) -> bool | None:
        asked.append(until)
        return None if len(asked) < 3 else landed

    calls: list[list[list[WireEvent]]] = []

    def commit(batches: list[list[WireEvent]]) -> None:
        calls.append(batches)
        if len(calls) == 1:
            raise CommitOutcomeUnknown("commit abc: TimeoutError", ask)

    batcher = buffered(commit, batch_size=2)
    batcher.submit([ev(0), ev(1)])
    wait_until(lambda: len(asked) == 3, timeout=30, interval=0.005)
    batcher.close(timeout_s=5)
    assert calls == [[[ev(0), ev(1)]]] * (1 if landed else 2)


def test_events_arriving_during_failures_keep_their_order(
    buffered: Callable[..., BufferedBatcher],
) -> None:
    healthy = threading.Event()
    commit = FakeCommit(fail=lambda n: not healthy.is_set())
    batcher = buffered(commit, batch_size=2)
    batcher.submit([ev(0), ev(1)])
    wait_until(lambda: len(commit.calls) >= 2, timeout=30, interval=0.005)
    batcher.submit([ev(2), ev(3), ev(4)])
    healthy.set()
    batcher.close()
    assert [e for b in commit.committed for e in b] == [ev(i) for i in range(5)]


def test_close_gives_up_after_its_timeout_and_says_what_is_left(
    buffered: Callable[..., BufferedBatcher], caplog: pytest.LogCaptureFixture
) -> None:
    healthy = threading.Event()
    commit = FakeCommit(fail=lambda n: not healthy.is_set())
    batcher = buffered(commit, batch_size=2)
    batcher.submit([ev(0), ev(1)])
    with caplog.at_level(logging.ERROR, logger="telemetron.ingest"):
        batcher.close(timeout_s=0.2)
    assert "exit with 2 buffered events not committed" in caplog.text
    assert commit.committed == []
    healthy.set()  # let the flusher thread finish
    wait_until(lambda: commit.committed, timeout=30, interval=0.005)
    assert commit.committed == [[ev(0), ev(1)]]


# A process that buffers two events and ends without closing its batcher: as a
# plain interpreter, or as a multiprocessing child (what granian's workers are),
# which leaves through os._exit() and so runs no atexit hook. Its batcher is made
# in a daemon thread, as granian's request threads are.
_EXITING = """
import json, multiprocessing, sys, threading
from ingest.batcher import BufferedBatcher

def buffer_two_and_end(path):
    def commit(batches):
        with open(path, "a") as fh:
            fh.write(json.dumps(batches) + "\\n")
    def request():
        batcher = BufferedBatcher(commit, batch_size=100, batch_timeout_s=3600, capacity=10)
        batcher.close_at_exit()
        batcher.submit([{"n": 1}, {"n": 2}])
    thread = threading.Thread(target=request, daemon=True)
    thread.start()
    thread.join()

if sys.argv[2] == "interpreter":
    buffer_two_and_end(sys.argv[1])
else:
    fork = multiprocessing.get_context("fork")
    child = fork.Process(target=buffer_two_and_end, args=sys.argv[1:2])
    child.start()
    child.join(60)
    sys.exit(child.exitcode)
"""


@pytest.mark.parametrize("process", ["interpreter", "multiprocessing-child"])
def test_a_process_that_ends_flushes_its_buffer(tmp_path: Path, process: str) -> None:
    out = tmp_path / "committed.jsonl"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    done = subprocess.run(
        [sys.executable, "-c", _EXITING, str(out), process],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert out.read_text().splitlines() == ['[[{"n": 1}, {"n": 2}]]']
