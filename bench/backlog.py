"""The broker backlog during a load: how many batches (django-q2 ORM rows) wait
in the SQLite queue table, sampled read-only every ``interval`` seconds. A
backlog that grows over the run means the cluster cannot keep up with ingest,
and 202 -> visible grows with it."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

__all__ = ["BacklogSampler"]


class BacklogSampler:
    def __init__(self, db_path: Path, interval_s: float = 0.5) -> None:
        self._db = db_path
        self._interval = interval_s
        self._stop = threading.Event()
        self.samples: list[int] = []
        self.enqueued = 0  # batches written to the broker between start() and stop()
        self._seq0 = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sequence(self) -> int:
        """How many batches were ever enqueued (the queue table's AUTOINCREMENT)."""
        conn = sqlite3.connect(f"file:{self._db}?mode=ro", uri=True, timeout=5)
        try:
            row = conn.execute(
                "SELECT seq FROM sqlite_sequence WHERE name = 'django_q_ormq'"
            ).fetchone()
            return int(row[0]) if row else 0
        finally:
            conn.close()

    def start(self) -> None:
        self._seq0 = self._sequence()
        self._thread.start()

    def stop(self) -> list[int]:
        self._stop.set()
        self._thread.join(10)
        self.enqueued = self._sequence() - self._seq0
        return self.samples

    def _run(self) -> None:
        conn = sqlite3.connect(f"file:{self._db}?mode=ro", uri=True, timeout=5)
        try:
            while not self._stop.wait(self._interval):
                try:
                    (count,) = conn.execute("SELECT count(*) FROM django_q_ormq").fetchone()
                except sqlite3.Error:
                    continue
                self.samples.append(int(count))
        finally:
            conn.close()
