"""The 202 -> visible probe: while the load runs, POST a marker event with a
unique source id every ``interval`` seconds and poll ``GET /stats/{id}`` until it
answers 200. The time from the 202 to that 200 is one sample.

Markers become visible roughly in order, so one poller asks about the oldest
marker still pending; when it shows up it moves on at once. A sample is an upper
bound: it ends when the 200 is *received*, so its resolution is one GET's latency
under load (reported beside the figures).
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field

__all__ = ["MARKER_BASE", "ProbeResult", "VisibilityProbe"]

MARKER_BASE = 10**15  # far from the load's source ids (1..10000)


@dataclass
class ProbeResult:
    latencies_s: list[float] = field(default_factory=list)
    acked: int = 0
    post_failures: int = 0
    never_visible: int = 0
    get_latencies_s: list[float] = field(default_factory=list)


class _Conn:
    """A keep-alive connection that reconnects once on a dropped socket."""

    def __init__(self, host: str, port: int) -> None:
        self._host, self._port = host, port
        self._conn = http.client.HTTPConnection(host, port, timeout=30)

    def request(self, method: str, path: str, body: bytes | None = None) -> int:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        for attempt in (1, 2):
            try:
                self._conn.request(method, path, body=body, headers=headers)
                response = self._conn.getresponse()
                response.read()
                return response.status
            except (OSError, http.client.HTTPException):
                self._conn.close()
                self._conn = http.client.HTTPConnection(self._host, self._port, timeout=30)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        self._conn.close()


class VisibilityProbe:
    def __init__(
        self, host: str, port: int, *, interval_s: float = 0.05, first_id: int = MARKER_BASE
    ) -> None:
        self._host, self._port = host, port
        self._interval = interval_s
        self._next_id = first_id
        self._pending: deque[tuple[int, float]] = deque()
        self._cond = threading.Condition()
        self._posting = threading.Event()
        self._posted_all = threading.Event()
        self._result = ProbeResult()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        self._posting.set()
        for target in (self._post_loop, self._poll_loop):
            thread = threading.Thread(target=target, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, grace_s: float = 60.0) -> ProbeResult:
        """Stop posting markers; wait up to ``grace_s`` for the pending ones to show."""
        self._posting.clear()
        self._posted_all.wait(30)
        deadline = time.monotonic() + grace_s
        with self._cond:
            while self._pending and time.monotonic() < deadline:
                self._cond.wait(0.2)
            self._result.never_visible = len(self._pending)
            self._pending.clear()
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(5)
        return self._result

    def _post_loop(self) -> None:
        conn = _Conn(self._host, self._port)
        start = time.monotonic()
        n = 0
        try:
            while self._posting.is_set():
                marker = self._next_id + n
                body = json.dumps(
                    {"sourceId": marker, "type": "BenchMarker", "timestamp": "2026-11-26T12:00:00Z"}
                ).encode()
                try:
                    status = conn.request("POST", "/ingest", body)
                except (OSError, http.client.HTTPException):
                    status = 0
                acked_at = time.monotonic()
                if status == 202:
                    with self._cond:
                        self._result.acked += 1
                        self._pending.append((marker, acked_at))
                        self._cond.notify_all()
                else:
                    self._result.post_failures += 1
                n += 1
                delay = start + n * self._interval - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
        finally:
            conn.close()
            self._posted_all.set()

    def _poll_loop(self) -> None:
        conn = _Conn(self._host, self._port)
        try:
            while True:
                with self._cond:
                    while not self._pending:
                        if self._posted_all.is_set() and not self._posting.is_set():
                            return
                        self._cond.wait(0.1)
                    marker, acked_at = self._pending[0]
                sent = time.monotonic()
                try:
                    status = conn.request("GET", f"/stats/{marker}")
                except (OSError, http.client.HTTPException):
                    status = 0
                received = time.monotonic()
                self._result.get_latencies_s.append(received - sent)
                if status == 200:
                    with self._cond:
                        if self._pending and self._pending[0][0] == marker:
                            self._pending.popleft()
                            self._result.latencies_s.append(received - acked_at)
                            self._cond.notify_all()
                else:
                    time.sleep(0.005)
        finally:
            conn.close()
