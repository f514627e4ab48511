"""Backpressure on the queue's backlog: past ``ingest.max_queue_batches`` batches
waiting for a worker, ingest answers 503 + Retry-After instead of letting the
backlog (and the time from 202 to visible stats) grow without bound while the
workers are down or behind.

The backlog is read at most once per ``interval`` per process (one COUNT on the
broker, or an LLEN on Redis), never per request. A failed read keeps the last
value: the broker write that follows fails on its own if the broker is down.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from broker.selectors import queue_depth
from core.config import get_config
from core.errors import ServiceUnavailable
from core.process_wide import process_wide

__all__ = ["QueueGate", "queue_gate", "queue_gate_check"]

log = logging.getLogger("telemetron.ingest")

REFRESH_INTERVAL_S = 1.0


class QueueGate:
    def __init__(
        self,
        *,
        limit: int,
        depth: Callable[[], int],
        retry_after: int,
        interval_s: float = REFRESH_INTERVAL_S,
    ) -> None:
        self._limit = limit
        self._depth_of = depth
        self._retry_after = retry_after
        self._interval = interval_s
        self._depth = 0
        self._next_read = 0.0
        self._lock = threading.Lock()

    def check(self) -> None:
        """Raise ServiceUnavailable while the backlog is at or over the limit."""
        now = time.monotonic()
        if now >= self._next_read and self._lock.acquire(blocking=False):
            try:
                self._depth = self._depth_of()
            except Exception as exc:
                log.warning("queue backlog not read: %s", exc)
            finally:
                self._next_read = time.monotonic() + self._interval
                self._lock.release()
        if self._depth >= self._limit:
            raise ServiceUnavailable(
                f"Queue backlog of {self._depth} batches is at its limit of {self._limit}"
                " (workers down or behind); retry later",
                self._retry_after,
            )


def _broker_depth() -> int:
    return queue_depth().waiting


@process_wide
def queue_gate() -> QueueGate | None:
    """The process's gate: none inline (``queue.workers = 0``) or with
    ``ingest.max_queue_batches = 0``."""
    cfg = get_config()
    if cfg.queue.workers == 0 or cfg.ingest.max_queue_batches == 0:
        return None
    return QueueGate(
        limit=cfg.ingest.max_queue_batches,
        depth=_broker_depth,
        retry_after=cfg.ingest.retry_after,
    )


def queue_gate_check() -> None:
    """Raise ServiceUnavailable while the queue's backlog is at its limit."""
    gate = queue_gate()
    if gate is not None:
        gate.check()
