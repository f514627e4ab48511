# Long: both acknowledgement modes, whose answers the README defines together.
"""The per-process batcher: turns accepted events into django-q2 tasks, one task
per batch of at most ``processor.batch_size`` events (README, "Acknowledgements and backpressure").

* :class:`GroupCommitBatcher` (``ingest.ack = "durable"``): the request returns
  only once its batch is committed to the broker. The first request to find no
  open batch with room for all its events becomes a new batch's leader: it
  lingers ``ingest.linger_ms`` so concurrent requests can join, takes the
  per-process flush lock (the batch keeps growing while it waits), seals the
  batch and commits it with one broker write; every other batch whose leader is
  waiting for the flush lock by then is sealed and committed in the same write
  (group commit: each batch its own task, all in one transaction). A request's
  events are never split over batches committed separately, so its answer is
  exact: 202 when all of them are committed, 503 when none is. A request over
  ``batch_size`` events commits its batches alone, in one transaction; a joiner
  whose batch is not yet sealed when ``ingest.commit_timeout`` runs out takes
  its events back (503), and so does a leader still waiting for the flush lock;
  once sealed, the commit's outcome is its answer. A commit whose answer was lost
  is resolved within the leader's ``commit_timeout`` (broker/commit.py): 202 if it
  landed, 503 if it did not, 503 "outcome unknown" if the store did not tell.
* :class:`BufferedBatcher` (``ingest.ack = "buffered"``): the request returns
  once its events are in a bounded in-memory buffer; a flusher thread commits at
  ``batch_size`` events or ``batch_timeout`` ms (a commit that failed is tried
  again; one of unknown outcome is asked about until the store tells, and tried
  again only if it did not land); a full buffer answers 503; the buffer is
  flushed when the process exits (:meth:`BufferedBatcher.close_at_exit`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

from broker.commit import CommitOutcomeUnknown, broker_commit
from broker.packages import WireEvent
from core.config import get_config
from core.errors import OutcomeUnknown, ServiceUnavailable
from core.memory import trim_now_and_then
from core.process_wide import process_wide

__all__ = ["Batcher", "BufferedBatcher", "GroupCommitBatcher", "get_batcher"]

log = logging.getLogger("telemetron.ingest")

_EXIT_WATCH_S = 1.0  # how often the exit watcher looks whether it was closed before
_ASK_S = 10.0  # how long one question about a commit's outcome waits for the store


class Commit(Protocol):
    def __call__(self, batches: list[list[WireEvent]], *, deadline: float | None = None) -> None:
        """Commit batches (each one queue task) all or none, or raise; its outcome
        known by ``deadline`` (``time.monotonic()``) or CommitOutcomeUnknown."""


BufferedCommit = Callable[[list[list[WireEvent]]], None]


class Batcher(Protocol):
    def submit(self, events: list[WireEvent]) -> None:
        """Take the events or raise ServiceUnavailable (nothing taken)."""

    def close(self) -> None:
        """Flush what is held; called at exit."""


class _Pending:
    __slots__ = ("done", "error", "events", "sealed")

    def __init__(self) -> None:
        self.events: list[WireEvent] = []
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.sealed = False  # taken for its commit: nobody joins or leaves any more


class GroupCommitBatcher:
    def __init__(
        self,
        commit: Commit,
        *,
        batch_size: int,
        linger_s: float,
        wait_timeout_s: float,
        retry_after: int = 1,
        wait: Callable[[threading.Event, float], bool] = threading.Event.wait,
    ) -> None:
        """``wait(done, timeout)`` is how a joiner waits for its batch's commit
        (``threading.Event.wait``; a test decides when the timeout runs out)."""
        self._commit = commit
        self._batch_size = batch_size
        self._linger = linger_s
        self._wait_timeout = wait_timeout_s
        self._wait = wait
        self._retry_after = retry_after
        self._lock = threading.Lock()  # guards _open and every pending's events/sealed
        self._flush_lock = threading.Lock()  # one commit at a time per process
        self._open: _Pending | None = None
        self._ready: list[_Pending] = []  # batches whose leaders wait for the flush lock

    def submit(self, events: list[WireEvent]) -> None:
        deadline = time.monotonic() + self._wait_timeout
        if len(events) > self._batch_size:
            self._commit_alone(events, deadline)
            return
        with self._lock:
            pending = self._open
            leading = pending is None or len(pending.events) + len(events) > self._batch_size
            if leading:
                pending = self._open = _Pending()
            assert pending is not None
            pending.events.extend(events)
        if leading:
            self._lead(pending, deadline)
        elif not self._wait(pending.done, self._wait_timeout):
            with self._lock:
                if not pending.sealed:
                    mine = {id(e) for e in events}
                    pending.events[:] = [e for e in pending.events if id(e) not in mine]
                    raise ServiceUnavailable(
                        "Timed out waiting for the queue; retry later", self._retry_after
                    )
            pending.done.wait()  # its commit is under way: the outcome is this request's too
        if pending.error is not None:
            raise self._refused(pending.error)

    def _lead(self, pending: _Pending, deadline: float) -> None:
        if self._linger and len(pending.events) < self._batch_size:
            time.sleep(self._linger)
        with self._lock:
            self._ready.append(pending)
        if not self._flush_lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            with self._lock:
                if not pending.sealed:  # nobody took it: it is not committed, give it up
                    self._ready.remove(pending)
                    if self._open is pending:
                        self._open = None
                    pending.sealed = True
                    pending.error = ServiceUnavailable(
                        "Timed out waiting for the queue; retry later", self._retry_after
                    )
                    pending.done.set()
                    return
            pending.done.wait()  # another leader's commit carries it: its outcome is ours
            return
        try:
            self._flush(deadline)
        finally:
            self._flush_lock.release()

    def _flush(self, deadline: float) -> None:
        """The flush lock held: commit every batch ready."""
        with self._lock:
            # Group commit: every batch whose leader is waiting for the flush
            # lock goes in this one commit (each its own task, in one
            # transaction), so under load a commit carries several batches.
            group, self._ready = self._ready, []
            for batch in group:
                if self._open is batch:
                    self._open = None
                batch.sealed = True
        if not group:
            return  # an earlier leader committed this batch with its own
        try:
            self._commit([batch.events for batch in group], deadline=deadline)
        except Exception as exc:
            events = sum(len(batch.events) for batch in group)
            if len(group) == 1:
                log.exception("batch commit of %d events failed", events)
            else:
                log.exception("batch commit of %d events in %d batches failed", events, len(group))
            for batch in group:
                batch.error = exc
        finally:
            for batch in group:
                batch.done.set()
            trim_now_and_then()  # the requests answered, their memory freed

    def _commit_alone(self, events: list[WireEvent], deadline: float) -> None:
        """A request over batch_size events: its batches, in one commit."""
        size = self._batch_size
        batches = [events[i : i + size] for i in range(0, len(events), size)]
        if not self._flush_lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            raise ServiceUnavailable(
                "Timed out waiting for the queue; retry later", self._retry_after
            )
        try:
            self._commit(batches, deadline=deadline)
        except Exception as exc:
            log.exception(
                "batch commit of %d events in %d batches failed", len(events), len(batches)
            )
            raise self._refused(exc) from None
        finally:
            self._flush_lock.release()

    def _refused(self, error: BaseException) -> ServiceUnavailable:
        """The answer to the requests of a failed commit (``error``)."""
        if isinstance(error, ServiceUnavailable):
            return error
        if isinstance(error, CommitOutcomeUnknown):
            return OutcomeUnknown(self._retry_after)
        return ServiceUnavailable(
            "The queue cannot take events right now; retry later", self._retry_after
        )

    def close(self) -> None:
        """Nothing is held: every submit returns after its commit."""


class BufferedBatcher:
    def __init__(
        self,
        commit: BufferedCommit,
        *,
        batch_size: int,
        batch_timeout_s: float,
        capacity: int,
        retry_after: int = 1,
        retry_backoff_s: float = 0.5,
    ) -> None:
        self._commit = commit
        self._batch_size = batch_size
        self._timeout = batch_timeout_s
        self._capacity = capacity
        self._retry_after = retry_after
        self._backoff = retry_backoff_s
        self._cond = threading.Condition()
        self._buffer: list[WireEvent] = []
        self._inflight = 0  # events of the batch being committed (out of the buffer)
        self._first_at = 0.0
        self._closing = False
        self._thread: threading.Thread | None = None

    def __len__(self) -> int:
        return len(self._buffer)

    def submit(self, events: list[WireEvent]) -> None:
        with self._cond:
            if self._closing:
                raise ServiceUnavailable("Shutting down; retry later", self._retry_after)
            if len(self._buffer) + len(events) > self._capacity:
                raise ServiceUnavailable(
                    f"Ingest buffer full ({self._capacity} events); retry later",
                    self._retry_after,
                )
            if not self._buffer:
                self._first_at = time.monotonic()
                # The flusher sleeps without a deadline on an empty buffer: wake it
                # so it starts this batch's batch_timeout.
                self._cond.notify()
            self._buffer.extend(events)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="telemetron-flusher", daemon=True
                )
                self._thread.start()
            if len(self._buffer) >= self._batch_size:
                self._cond.notify()

    def _take(self) -> list[WireEvent] | None:
        """Wait for a due batch; None when closing and empty."""
        with self._cond:
            while True:
                if self._buffer:
                    due = self._first_at + self._timeout - time.monotonic()
                    if self._closing or len(self._buffer) >= self._batch_size or due <= 0:
                        batch = self._buffer[: self._batch_size]
                        del self._buffer[: self._batch_size]
                        self._first_at = time.monotonic()
                        self._inflight = len(batch)
                        return batch
                    self._cond.wait(due)
                elif self._closing:
                    return None
                else:
                    self._cond.wait()

    def _run(self) -> None:
        while (batch := self._take()) is not None:
            try:
                self._commit([batch])
            except Exception as exc:
                if isinstance(exc, CommitOutcomeUnknown) and self._landed(exc):
                    with self._cond:
                        self._inflight = 0
                    continue
                log.exception("batch commit of %d events failed; will retry", len(batch))
                with self._cond:
                    self._buffer[0:0] = batch  # accepted events are never dropped
                    self._inflight = 0
                time.sleep(self._backoff)
            else:
                with self._cond:
                    self._inflight = 0

    def _landed(self, unknown: CommitOutcomeUnknown) -> bool:
        """Whether a commit of unknown outcome landed, asked until the store
        tells: retrying it blindly could count its events twice."""
        while (landed := unknown.ask(time.monotonic() + _ASK_S)) is None:
            log.warning("the outcome of a batch commit is still unknown; asking again")
            time.sleep(self._backoff)
        return landed

    def close_at_exit(self) -> None:
        """Close once the main thread is done (unless closed before), from a thread
        that is no daemon (whatever thread asks: granian's are): the interpreter
        and a multiprocessing child, such as granian's workers that leave through
        ``os._exit`` and skip ``atexit``, wait for it then."""
        threading.Thread(target=self._close_after_main, name="exit-flush", daemon=False).start()

    def _close_after_main(self) -> None:
        main = threading.main_thread()
        while main.is_alive() and not self._closing:
            main.join(_EXIT_WATCH_S)
        if not self._closing:  # else closed before: nothing left to do here
            self.close()

    def close(self, timeout_s: float = 30.0) -> None:
        """Stop taking events and flush the buffer (SIGTERM/SIGINT/exit)."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout_s)
        with self._cond:  # the batch a commit still holds is not committed either
            left = len(self._buffer) + self._inflight
        if left:
            log.error("exit with %d buffered events not committed", left)


@process_wide
def get_batcher() -> Batcher:
    """The process's batcher, as ``ingest.ack`` says."""
    cfg = get_config()
    if cfg.ingest.ack == "durable":
        return GroupCommitBatcher(
            broker_commit,
            batch_size=cfg.processor.batch_size,
            linger_s=cfg.ingest.linger_ms / 1000,
            wait_timeout_s=cfg.ingest.commit_timeout,
            retry_after=cfg.ingest.retry_after,
        )
    batcher = BufferedBatcher(
        broker_commit,
        batch_size=cfg.processor.batch_size,
        batch_timeout_s=cfg.processor.batch_timeout / 1000,
        capacity=cfg.processor.channel_capacity,
        retry_after=cfg.ingest.retry_after,
    )
    batcher.close_at_exit()
    return batcher
