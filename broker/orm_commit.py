"""The resolution of an ORM broker commit whose answer was lost (broker/orm.py,
broker/commit.py).

Every commit inserts its marker (:class:`~broker.models.CommitMarker`) first in
its transaction. The resolver, on a connection of its own, inserts the same id
as void: the insert conflicts with the commit's marker (it landed; on
PostgreSQL the insert waits for the commit's transaction to end, on SQLite for
its write lock), or it takes the id (it did not land, and never will: the
commit's own insert of the id would now fail). It runs in a thread of its own,
so a frozen database holds that thread, not the request, which gets None at
its deadline.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from django.db import DatabaseError, connections

from broker.models import CommitMarker, QueuedTask

__all__ = ["commit_resolve", "marker_statements"]

_RESOLVE_PAUSE_S = 0.2  # between a resolver's failed connection and the next


def marker_statements(connection: Any) -> dict[str, str]:
    """The statements of commit markers on ``connection``'s database."""
    tm = connection.ops.quote_name(CommitMarker._meta.db_table)
    tq = connection.ops.quote_name(QueuedTask._meta.db_table)
    return {
        # PostgreSQL: the commit of one task, its marker with it (params: commit
        # id, now, queue, payload).
        "enqueue_marked": f"WITH m AS (INSERT INTO {tm} (commit_id, landed, at)"
        f" VALUES (%s, TRUE, %s)) INSERT INTO {tq} (queue, payload, claimed_until, owner,"
        " deliveries) VALUES (%s, %s, 0, '', 0)",
        # Params: commit id, now (the commit's marker; the resolver's is "void").
        "mark": f"INSERT INTO {tm} (commit_id, landed, at) VALUES (%s, TRUE, %s)",
        "void": f"INSERT INTO {tm} (commit_id, landed, at) VALUES (%s, FALSE, %s)"
        " ON CONFLICT (commit_id) DO NOTHING RETURNING commit_id",
        "marker": f"SELECT landed FROM {tm} WHERE commit_id = %s",
        "marker_purge": f"DELETE FROM {tm} WHERE at < %s",
    }


def commit_resolve(alias: str, commit_id: str, *, deadline: float) -> bool | None:
    """Whether the commit ``commit_id`` landed on the database ``alias``: True,
    False (voided now), None when the database did not answer by ``deadline``."""
    outcome: list[bool | None] = []
    done = threading.Event()

    def resolve() -> None:
        try:
            outcome.append(_resolve(alias, commit_id, deadline))
        finally:
            done.set()

    threading.Thread(target=resolve, name="commit-resolver", daemon=True).start()
    done.wait(max(0.0, deadline - time.monotonic()))
    return outcome[0] if outcome else None


def _resolve(alias: str, commit_id: str, deadline: float) -> bool | None:
    while time.monotonic() < deadline:
        connection = connections.create_connection(alias)
        if connection.vendor == "postgresql":
            options = connection.settings_dict.get("OPTIONS", {})
            connection.settings_dict = {
                **connection.settings_dict,
                "OPTIONS": {**options, "connect_timeout": _connect_timeout(deadline)},
            }
        try:
            sql = marker_statements(connection)
            with connection.cursor() as cursor:
                cursor.execute(sql["void"], [commit_id, time.time()])
                if cursor.fetchone() is not None:
                    return False  # voided: the commit can no longer land
                cursor.execute(sql["marker"], [commit_id])
                row = cursor.fetchone()
                return bool(row and row[0])
        except DatabaseError:
            time.sleep(_RESOLVE_PAUSE_S)
        finally:
            connection.close()
    return None


def _connect_timeout(deadline: float) -> int:
    """libpq's connect_timeout (whole seconds, at least 2) within ``deadline``."""
    return max(2, int(deadline - time.monotonic()))
