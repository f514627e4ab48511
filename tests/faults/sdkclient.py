"""The client of a fault run: several threads that behave like an SDK. Each
operation is one request's worth of events — ``/ingest`` (one event),
``/ingest/batch`` (2 to 20), ``/v1/track`` (one, with a write key), ``/v1/batch``
(2 to 20, with a write key) — sent to a web node picked at random, and sent again
(to any web node) after a ``503``, a ``429``, a connection error or a timeout,
with exponential backoff and jitter, honouring ``Retry-After``. Half of the
operations carry event ids (``id``, ``messageId``), the same on every attempt,
as an SDK's retry does; the other half carry none.

Accounting: every event of attempt ``a`` of operation ``n`` has the type
``o<n>a<a>`` (a Segment ``track`` event's name), so ``/stats/{source}``'s
``event_types`` say exactly how many events each attempt got counted, whatever
its answer was. Every attempt is an ``attempt`` record of the history."""

from __future__ import annotations

import itertools
import random
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from tests.faults.history import History

__all__ = ["OP_KINDS", "SdkClient", "attempt_type"]

OP_KINDS = ("ingest", "batch", "v1track", "v1batch")
_PATHS = {
    "ingest": "/ingest",
    "batch": "/ingest/batch",
    "v1track": "/v1/track",
    "v1batch": "/v1/batch",
}
RETRIED = {503, 429}
MAX_ATTEMPTS = 10


def attempt_type(op: int, attempt: int) -> str:
    return f"o{op}a{attempt}"


class SdkClient:
    def __init__(
        self,
        history: History,
        *,
        nodes: Callable[[], list[str]],
        url: Callable[[str], str | None],
        native_sources: tuple[int, ...],
        keys: dict[int, str],
        seed: int,
        threads: int = 4,
        think_s: float = 0.03,
        timeout_s: float = 20.0,
    ) -> None:
        self._history = history
        self._nodes, self._url = nodes, url
        self._native, self._keys = native_sources, keys
        self._seed, self._think, self._timeout = seed, think_s, timeout_s
        self._ops = itertools.count(1)
        self._tag = uuid.uuid4().hex[:8]  # event ids unique to this run
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._loop, args=(n,), daemon=True) for n in range(threads)
        ]

    def start(self) -> SdkClient:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        """No new operation or retry; the requests in flight end (bounded by the timeout)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(self._timeout + 10)

    def _loop(self, n: int) -> None:
        rng = random.Random(self._seed * 1000 + n)
        timeout = httpx.Timeout(self._timeout, connect=5.0)
        with httpx.Client(timeout=timeout) as client:
            while not self._stop.is_set():
                self._operation(client, rng, next(self._ops))
                self._stop.wait(rng.uniform(0, 2 * self._think))

    def _operation(self, client: httpx.Client, rng: random.Random, op: int) -> None:
        kind = rng.choice(OP_KINDS)
        keyed = kind.startswith("v1")
        source = rng.choice(sorted(self._keys)) if keyed else rng.choice(self._native)
        count = 1 if kind in ("ingest", "v1track") else rng.randint(2, 20)
        ids = [f"{self._tag}-{op}-{i}" for i in range(count)] if rng.random() < 0.5 else None
        for attempt in range(1, MAX_ATTEMPTS + 1):
            nodes = [n for n in self._nodes() if self._url(n)]
            node = rng.choice(nodes) if nodes else None
            body = _body(kind, source, attempt_type(op, attempt), count, ids)
            record = self._send(client, node, kind, body, self._keys.get(source))
            record.update(op=op, a=attempt, kind=kind, source=source, n=count, ids=ids is not None)
            self._history.add("attempt", **record)
            status = record["status"]
            if (status not in RETRIED and isinstance(status, int)) or self._stop.is_set():
                return
            backoff = min(5.0, 0.1 * 2**attempt) * rng.uniform(0.5, 1.5)
            self._stop.wait(max(backoff, min(5.0, record.get("retry_after") or 0)))

    def _send(
        self, client: httpx.Client, node: str | None, kind: str, body: Any, key: str | None
    ) -> dict[str, Any]:
        t0 = self._history.now()
        url = self._url(node) if node else None
        record: dict[str, Any] = {"node": node, "t0": t0}
        if url is None:
            return {**record, "t1": t0, "status": "conn", "error": "no web node up"}
        auth = (key, "") if kind.startswith("v1") and key else None
        try:
            response = client.post(url + _PATHS[kind], json=body, auth=auth)
        except httpx.TimeoutException as exc:
            return {**record, "t1": self._history.now(), "status": "timeout", "error": repr(exc)}
        except httpx.TransportError as exc:
            return {**record, "t1": self._history.now(), "status": "conn", "error": repr(exc)}
        record.update(t1=self._history.now(), status=response.status_code)
        if response.status_code >= 300:
            record["error"] = response.text[:300]
            record["retry_after"] = _seconds(response.headers.get("Retry-After"))
        elif kind == "batch":
            try:
                record["accepted"] = response.json().get("accepted")
            except ValueError:
                record["accepted"] = f"not JSON: {response.text[:100]!r}"  # bad_status
        return record


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _body(kind: str, source: int, type_: str, count: int, ids: list[str] | None) -> Any:
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    if kind.startswith("v1"):
        messages = [
            {"type": "track", "event": type_, "userId": f"user-{i}", "timestamp": now}
            | ({"messageId": ids[i]} if ids else {})
            for i in range(count)
        ]
        return messages[0] if kind == "v1track" else {"batch": messages}
    events = [
        {"sourceId": source, "type": type_, "timestamp": now} | ({"id": ids[i]} if ids else {})
        for i in range(count)
    ]
    return events[0] if kind == "ingest" else events
