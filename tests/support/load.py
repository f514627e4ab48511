"""Client load for crash tests: several threads posting single events and
batches to one or more web nodes, bounded in requests and time, keeping count
of what each source had answered 202 and of what got no answer at all (a
request in flight when its server died may or may not have been committed)."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx

__all__ = ["Load", "LoadResult"]


@dataclass
class LoadResult:
    accepted: Counter[int] = field(default_factory=Counter)  # events answered 202, per source
    unanswered: Counter[int] = field(default_factory=Counter)  # events of requests with no answer
    statuses: Counter[str] = field(default_factory=Counter)

    @property
    def accepted_events(self) -> int:
        return sum(self.accepted.values())


class Load:
    """``threads`` clients, each sending up to ``requests`` POSTs (every other one
    a batch of ``batch`` events) to the URLs in turn, for at most ``seconds``,
    over sources 1..``sources``. A client whose server stops answering retries
    the next request after a moment (so a restarted node gets traffic again);
    stop() ends them all."""

    def __init__(
        self,
        urls: Sequence[str],
        *,
        threads: int = 4,
        requests: int = 200,
        batch: int = 50,
        sources: int = 100,
        seconds: float = 90.0,
    ) -> None:
        self.result = LoadResult()
        self._urls = list(urls)
        self._requests, self._batch, self._sources = requests, batch, sources
        self._deadline = time.monotonic() + seconds
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._client, args=(n,), daemon=True) for n in range(threads)
        ]

    def start(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> LoadResult:
        self._stop.set()
        for t in self._threads:
            t.join(60)
        return self.result

    def join(self) -> LoadResult:
        for t in self._threads:
            t.join(max(1.0, self._deadline - time.monotonic() + 60))
        return self.result

    @property
    def done(self) -> bool:
        return not any(t.is_alive() for t in self._threads)

    def _events(self, rng: random.Random, i: int) -> tuple[str, list[dict[str, object]]]:
        count = self._batch if i % 2 else 1
        events = [
            {
                "sourceId": rng.randint(1, self._sources),
                "type": rng.choice(("Heartbeat", "Click", "View")),
                "timestamp": f"2026-11-{rng.randint(1, 28):02d}T10:{rng.randint(0, 59):02d}:00Z",
            }
            for _ in range(count)
        ]
        return ("/ingest/batch" if i % 2 else "/ingest"), events

    def _client(self, n: int) -> None:
        rng = random.Random(n)
        clients = [httpx.Client(base_url=url, timeout=30) for url in self._urls]
        try:
            for i in range(self._requests):
                if self._stop.is_set() or time.monotonic() > self._deadline:
                    return
                path, events = self._events(rng, i)
                body: object = events if path == "/ingest/batch" else events[0]
                client = clients[(n + i) % len(clients)]
                try:
                    response = client.post(path, json=body)
                except httpx.TransportError:
                    self._record("no answer", events, unanswered=True)
                    self._stop.wait(0.2)
                    continue
                accepted = response.status_code == 202
                self._record(str(response.status_code), events if accepted else [])
        finally:
            for client in clients:
                client.close()

    def _record(
        self, status: str, events: list[dict[str, object]], *, unanswered: bool = False
    ) -> None:
        with self._lock:
            self.result.statuses[status] += 1
            target = self.result.unanswered if unanswered else self.result.accepted
            for e in events:
                target[int(e["sourceId"])] += 1  # type: ignore[call-overload]
