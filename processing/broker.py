"""django-q2's ORM broker with each round trip as one SQL statement.

The stock ``django_q.brokers.orm.ORM`` builds ORM queries and calls
``close_old_connections()`` on every call, and its ``dequeue`` is a SELECT
followed by one UPDATE per task. With the database as the broker that per-batch
cost was the cluster's largest (bench/RESULTS.md, "Where the time goes"). Here:

* ``enqueue``: one INSERT;
* ``dequeue``: one ``UPDATE … WHERE id IN (SELECT … ORDER BY id LIMIT bulk)
  RETURNING``, so the oldest tasks go first (FIFO) and are claimed atomically
  (PostgreSQL adds ``FOR UPDATE SKIP LOCKED`` so two clusters never claim the same
  row; SQLite runs one writer at a time); after an empty poll, a read first, so an
  idle cluster does not take SQLite's write lock every ``queue.poll`` seconds;
* ``acknowledge``/``delete``: one DELETE.

Same table, same columns, same lock semantics (a claimed task is invisible until
``Q_CLUSTER["retry"]`` seconds have passed, then redelivered), so it mixes with
the stock broker and django-q2's admin. Stale connections are still closed, at most
once a second and whenever the queue is empty, instead of on every call.
``RETURNING`` needs SQLite 3.35 or later (Debian 12's Python has 3.40).
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from django import db
from django.db import connections, transaction
from django.utils import timezone
from django_q.brokers.orm import ORM
from django_q.conf import Conf
from django_q.models import OrmQ

__all__ = ["SingleStatementORM"]

_CHECK_INTERVAL_S = 1.0


class SingleStatementORM(ORM):
    def __init__(self, list_key: str | None = None) -> None:
        super().__init__(list_key=list_key)
        self._next_check = 0.0
        self._idle = False  # the last dequeue found nothing
        self._statements: dict[str, str] | None = None

    def _connection(self, *, check: bool = False) -> Any:
        """The broker's connection; closes it first if it is broken or past its age
        (what the stock broker does on every call), when asked or once a second."""
        now = time.monotonic()
        if (check or now >= self._next_check) and transaction.get_autocommit(using=Conf.ORM):
            db.close_old_connections()
            self._next_check = now + _CHECK_INTERVAL_S
        return connections[Conf.ORM]

    def _sql(self, connection: Any) -> dict[str, str]:
        """The broker's statements, built once (the alias's vendor never changes)."""
        if self._statements is None:
            q = connection.ops.quote_name
            table, id_, key, payload, lock = (
                q(OrmQ._meta.db_table),
                q("id"),
                q("key"),
                q("payload"),
                q("lock"),
            )
            skip_locked = " FOR UPDATE SKIP LOCKED" if connection.vendor == "postgresql" else ""
            self._statements = {
                "enqueue": f"INSERT INTO {table} ({key}, {payload}, {lock})"
                f" VALUES (%s, %s, %s) RETURNING {id_}",
                "peek": f"SELECT 1 FROM {table} WHERE {key} = %s AND {lock} < %s LIMIT 1",
                "claim": f"UPDATE {table} SET {lock} = %s WHERE {id_} IN ("
                f"SELECT {id_} FROM {table} WHERE {key} = %s AND {lock} < %s "
                f"ORDER BY {id_} LIMIT %s{skip_locked}) RETURNING {id_}, {payload}",
                "delete": f"DELETE FROM {table} WHERE {id_} = %s",
            }
        return self._statements

    def _now(self, connection: Any, delta_s: float = 0) -> Any:
        moment = timezone.now() + timedelta(seconds=delta_s)
        return connection.ops.adapt_datetimefield_value(moment)

    def enqueue(self, task: str) -> int:
        connection = self._connection()
        with connection.cursor() as cursor:
            cursor.execute(
                self._sql(connection)["enqueue"],
                [self.list_key or Conf.CLUSTER_NAME, task, self._now(connection)],
            )
            return int(cursor.fetchone()[0])

    def dequeue(self) -> list[tuple[int, str]] | None:
        connection = self._connection()
        sql = self._sql(connection)
        with connection.cursor() as cursor:
            if self._idle:
                # The queue was empty: look before taking the write lock, so an idle
                # cluster polling every queue.poll seconds only reads.
                cursor.execute(sql["peek"], [self.list_key, self._now(connection)])
                if cursor.fetchone() is None:
                    self._wait()
                    return None
            cursor.execute(
                sql["claim"],
                [
                    self._now(connection, Conf.RETRY),
                    self.list_key,
                    self._now(connection),
                    Conf.BULK,
                ],
            )
            tasks = sorted(cursor.fetchall())
        if tasks:
            self._idle = False
            return [(int(pk), str(body)) for pk, body in tasks]
        self._wait()
        return None

    def _wait(self) -> None:
        """An empty queue: a moment to check the connection, then spare the CPU."""
        self._idle = True
        self._connection(check=True)
        time.sleep(Conf.POLL)

    def delete(self, task_id: int) -> None:
        connection = self._connection()
        with connection.cursor() as cursor:
            cursor.execute(self._sql(connection)["delete"], [task_id])
