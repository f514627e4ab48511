"""Read-only looks into the database of a real installation (SQLite file or
PostgreSQL), from the test process: the broker queue, the dead letters and the
batch ledger, as an operator would inspect them; and a SQLite database copied
from a consistent read of it."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import psycopg

from tests.support.procs import wait_until

__all__ = [
    "dead_letters",
    "processed_batches",
    "queue_length",
    "rows",
    "sqlite_copy",
    "wait_queue_empty",
]


def sqlite_copy(source: Path | str, dest: Path) -> None:
    """A copy of the SQLite database ``source`` at ``dest``, through SQLite's
    backup (consistent even with a write-ahead log beside the file)."""
    with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(dest)) as dst:
        src.backup(dst)


def rows(database_url: str, sql: str) -> list[tuple[Any, ...]]:
    """Run one SELECT on the installation's database."""
    if database_url.startswith("sqlite:///"):
        path = database_url.removeprefix("sqlite:///")
        with closing(sqlite3.connect(path, timeout=30)) as conn:
            return list(conn.execute(sql).fetchall())
    with psycopg.connect(database_url) as conn:
        return list(conn.execute(sql).fetchall())  # type: ignore[arg-type]


def queue_length(database_url: str) -> int:
    """Batches in the ORM broker (processing_queuedtask): waiting, running or
    awaiting redelivery."""
    return int(rows(database_url, "SELECT COUNT(*) FROM processing_queuedtask")[0][0])


def wait_queue_empty(database_url: str, timeout: float = 60.0) -> None:
    """Wait until every batch committed to the broker has been acknowledged."""
    wait_until(lambda: queue_length(database_url) == 0, timeout=timeout, interval=0.1)


def dead_letters(database_url: str) -> list[dict[str, Any]]:
    """Every DeadLetter row, oldest first, with its events decoded."""
    out = []
    for batch_id, plugin, events, error_class, error_message, attempts, status in rows(
        database_url,
        "SELECT batch_id, plugin, events, error_class, error_message, attempts, status"
        " FROM processing_deadletter ORDER BY id",
    ):
        out.append(
            {
                "batch_id": batch_id,
                "plugin": plugin,
                "events": json.loads(events) if isinstance(events, str) else events,
                "error_class": error_class,
                "error_message": error_message,
                "attempts": attempts,
                "status": status,
            }
        )
    return out


def processed_batches(database_url: str) -> dict[str, int]:
    """The StorageProcessor's ledger: batch id -> events merged."""
    return dict(rows(database_url, "SELECT batch_id, events FROM stats_processedbatch"))
