"""A run's history: every operation of the client, every fault of the nemesis,
every probe and stats sample, one JSON object a line (JSON Lines), written as
it happens so a run that dies still leaves what it saw. Times are seconds since
the run started (monotonic clock); the first record carries the wall clock.

Record kinds (``rec``): ``run`` (the configuration and its settings),
``attempt`` (one HTTP request of a client operation), ``fault`` (one injected
fault, from its start to its end), ``probe`` (one ``/readyz``), ``stats`` (one
``/stats`` sample), ``exit`` (a node's process tree ended: its leftovers),
``final`` (what was counted per event type at the end, dead letters)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["History", "read_history"]


class History:
    """Appends records to ``path`` from any thread; keeps them in memory too."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.records: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._start = time.monotonic()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("w")

    def now(self) -> float:
        """Seconds since the run started."""
        return round(time.monotonic() - self._start, 4)

    def add(self, rec: str, **fields: Any) -> dict[str, Any]:
        record = {"rec": rec, **fields}
        line = json.dumps(record, default=str)
        with self._lock:
            self.records.append(record)
            if not self._file.closed:
                self._file.write(line + "\n")
                self._file.flush()
        return record

    def of(self, rec: str) -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in self.records if r["rec"] == rec]

    def close(self) -> None:
        with self._lock:
            self._file.close()


def read_history(path: Path) -> Iterator[dict[str, Any]]:
    with path.open() as f:
        for line in f:
            if line.strip():
                yield json.loads(line)
