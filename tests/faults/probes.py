"""What a run watches besides its client's answers:

* :class:`Prober` — ``GET /readyz`` on every node that serves HTTP, every half
  second (timeout 5 s): ``probe`` records (the invariant: answered within 1 s);
* :class:`StatsWatch` — ``GET /stats`` every half second: ``stats`` records, from
  which each fault's recovery is read (when the events acknowledged before its
  end are all counted);
* :func:`counts_poll` — at the end of a run, ``/stats/{source}`` of every source
  the client wrote to, once a second: ``counts`` records with the event types
  whose counts changed, until every acknowledged attempt is counted or time is up."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

import httpx

from tests.faults.history import History

__all__ = ["Prober", "StatsWatch", "counts_poll"]

PROBE_EVERY_S = 0.5
PROBE_TIMEOUT_S = 5.0


class _Poller:
    def __init__(self, history: History) -> None:
        self.history = history
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def _spawn(self, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(PROBE_TIMEOUT_S + 5)


class Prober(_Poller):
    def __init__(self, history: History, nodes: list[str], url: Callable[[str], str | None]):
        super().__init__(history)
        self._nodes, self._url = nodes, url

    def start(self) -> Prober:
        for node in self._nodes:
            self._spawn(self._probe, node)
        return self

    def _probe(self, node: str) -> None:
        with httpx.Client(timeout=PROBE_TIMEOUT_S) as client:
            while not self._stop.wait(PROBE_EVERY_S):
                url = self._url(node)
                if url is None:
                    continue  # down: restarting
                t0 = self.history.now()
                try:
                    status: int | str = client.get(f"{url}/readyz").status_code
                except httpx.TimeoutException:
                    status = "timeout"
                except httpx.TransportError:
                    status = "conn"
                dt = round(self.history.now() - t0, 4)
                self.history.add("probe", node=node, t0=t0, dt=dt, status=status)


class StatsWatch(_Poller):
    def __init__(self, history: History, nodes: list[str], url: Callable[[str], str | None]):
        super().__init__(history)
        self._nodes, self._url = nodes, url

    def start(self) -> StatsWatch:
        self._spawn(self._watch)
        return self

    def _watch(self) -> None:
        with httpx.Client(timeout=PROBE_TIMEOUT_S) as client:
            while not self._stop.wait(PROBE_EVERY_S):
                for node in self._nodes:
                    url = self._url(node)
                    if url is None:
                        continue
                    try:
                        response = client.get(f"{url}/stats")
                        events = int(response.json()["events_count"])
                    except (httpx.HTTPError, ValueError, KeyError, TypeError):
                        continue  # down, or an error's body: no sample
                    self.history.add("stats", t=self.history.now(), events=events)
                    break


def counts_poll(
    history: History,
    *,
    urls: Callable[[], list[str]],
    sources: Iterable[int],
    expected: Callable[[dict[str, int]], bool],
    until: float,
) -> dict[str, int]:
    """Poll every source's event types once a second until ``expected(counts)``
    or the run's clock reaches ``until``; returns the last counts."""
    counts: dict[str, int] = {}
    sources = sorted(set(sources))
    with httpx.Client(timeout=10) as client:
        while True:
            polled = _counts_read(client, urls(), sources)
            if polled is not None:
                changed = {t: c for t, c in polled.items() if counts.get(t) != c}
                counts = polled
                history.add("counts", t=history.now(), types=changed)
                if expected(counts):
                    return counts
            if history.now() >= until:
                return counts
            time.sleep(1.0)


def _counts_read(
    client: httpx.Client, urls: list[str], sources: list[int]
) -> dict[str, int] | None:
    for url in urls:
        counts: dict[str, int] = {}
        try:
            for source in sources:
                response = client.get(f"{url}/stats/{source}")
                if response.status_code == 404:
                    continue
                response.raise_for_status()
                for type_, count in response.json()["event_types"].items():
                    counts[type_] = counts.get(type_, 0) + int(count)
        except (httpx.HTTPError, ValueError, KeyError):
            continue
        return counts
    return None
