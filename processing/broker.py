# Long: the ORM broker's statements and their one-line reasons belong together.
"""Our django-q2 broker on the database: at-least-once, with each round trip one
SQL statement, and a crashed cluster's tasks handed out again within seconds.

Tasks live in our own table (:class:`~processing.models.QueuedTask`: django-q2's
``OrmQ`` has no owner column), the clusters' heartbeats in
:class:`~processing.models.ClusterLease` (see :mod:`processing.leases` for
when a claim is taken over). Every time is the database's clock, so the nodes'
clocks never matter.

* ``enqueue``: one INSERT (several of one request in one transaction:
  :meth:`OrmBroker.atomic`);
* ``dequeue``: one ``UPDATE … WHERE id IN (SELECT … ORDER BY id LIMIT bulk)
  RETURNING``: the oldest claimable tasks (waiting, claim expired, or claimed by
  a dead cluster), FIFO, claimed atomically for this cluster (PostgreSQL adds
  ``FOR UPDATE SKIP LOCKED``; SQLite runs one writer at a time), and only while
  this cluster's own lease is alive. After an empty poll, the same condition is
  read first, so an idle cluster does not take SQLite's write lock every
  ``queue.poll``. The claim's batch tasks are handed out as one
  (``queue.coalesce``, :mod:`processing.coalesce`);
* ``acknowledge``/``delete``: one DELETE (of a coalesced task's tasks too);
* ``set_stat`` (the sentinel's heartbeat, every 0.5 s): one upsert of the lease,
  which also holds django-q2's status of the cluster for /readyz (the last one,
  of a clean stop, marks the lease dead: nothing is left to take over); once a second
  the leases of this host whose sentinel is gone are marked dead; once a minute
  old leases and the event ids older than ``ingest.dedup_window`` are deleted;
* ``seen_claim``: the exactly-once record of event ids (ops/broker.py), one
  upsert per 300 ids in the enqueue's transaction.

Stale connections are closed at most once a second and whenever the queue is
empty, instead of on every call; one that failed is closed at once.
``RETURNING`` needs SQLite 3.35 or later (Debian 12's Python has 3.40).
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django import db
from django.db import DatabaseError, connections, transaction
from django_q.brokers import Broker
from django_q.conf import Conf

from processing.coalesce import ack_ids, coalesce
from processing.leases import (
    FULL_CLAIM_INTERVAL_S,
    LEASE_CLEANUP_S,
    cluster_id_of,
    host_id,
    mark_redelivered,
    process_alive,
    process_start,
    stat_stopped,
)
from processing.models import ClusterLease, QueuedTask, SeenMessage
from telemetron_site.config import get_config
from telemetron_site.fields import BIAS

__all__ = ["OrmBroker"]

log = logging.getLogger("telemetron.processing")

_CHECK_INTERVAL_S = 1.0
_HOUSEKEEPING_S = 1.0
_CLEANUP_S = 60.0
_SEEN_CHUNK = 300  # rows per dedup INSERT (3 parameters each)
_ACK_CHUNK = 500  # ids per DELETE (SQLite's parameter limit)

_NOW = {
    "postgresql": "CAST(EXTRACT(EPOCH FROM statement_timestamp()) AS DOUBLE PRECISION)",
    "sqlite": "((julianday('now') - 2440587.5) * 86400.0)",
}


def _statements(connection: Any) -> dict[str, str]:
    q = connection.ops.quote_name
    now = _NOW[connection.vendor]
    tq, tl = q(QueuedTask._meta.db_table), q(ClusterLease._meta.db_table)
    ts = q(SeenMessage._meta.db_table)
    skip_locked = " FOR UPDATE SKIP LOCKED" if connection.vendor == "postgresql" else ""
    # Params: me, dead_after, me, dead_after. A task is claimable when its claim
    # expired, or its owner (another cluster) has no live lease: none, marked
    # dead, or stale while this cluster's own heartbeats have been regular.
    claimable = (
        f"(t.claimed_until < {now} OR (t.owner <> '' AND t.owner <> %s AND NOT EXISTS ("
        f"SELECT 1 FROM {tl} o WHERE o.cluster_id = t.owner AND NOT o.dead AND ("
        f"o.heartbeat >= {now} - %s OR NOT EXISTS (SELECT 1 FROM {tl} m"
        f" WHERE m.cluster_id = %s AND m.fresh_since <= {now} - %s)))))"
    )
    claim = (
        f"UPDATE {tq} SET claimed_until = {now} + %s, owner = %s,"
        f" deliveries = deliveries + 1 WHERE id IN (SELECT t.id FROM {tq} t"
        f" WHERE t.queue = %s AND {{}} ORDER BY t.id LIMIT %s{skip_locked})"
        f" AND EXISTS (SELECT 1 FROM {tl} WHERE cluster_id = %s AND NOT dead"
        f" AND heartbeat >= {now} - %s) RETURNING id, payload, deliveries"
    )
    return {
        "enqueue": f"INSERT INTO {tq} (queue, payload, claimed_until, owner, deliveries)"
        " VALUES (%s, %s, 0, '', 0) RETURNING id",
        "peek": f"SELECT 1 FROM {tq} t WHERE t.queue = %s AND {claimable} LIMIT 1",
        # Params: retry, me, queue, <claimable>, bulk, me, dead_after.
        "claim": claim.format(claimable),
        # The same without looking for dead clusters' tasks (params: no <claimable>).
        "claim_waiting": claim.format(f"t.claimed_until < {now}"),
        "purge": f"DELETE FROM {tq} WHERE queue = %s",
        "waiting": f"SELECT COUNT(*) FROM {tq} WHERE queue = %s AND claimed_until < {now}",
        "claimed": f"SELECT COUNT(*) FROM {tq} WHERE queue = %s AND claimed_until >= {now}",
        "oldest": f"SELECT payload FROM {tq} WHERE queue = %s ORDER BY id LIMIT 1",
        # Params: id, queue, host, pid, pid_start, stopped, stat, stat ttl, dead_after.
        # A clean stop's last heartbeat marks the lease dead (processing/leases.py).
        "heartbeat": f"INSERT INTO {tl} (cluster_id, queue, host, pid, pid_start, heartbeat,"
        " fresh_since, dead, stat, stat_expires)"
        f" VALUES (%s, %s, %s, %s, %s, {now}, {now}, %s, %s, {now} + %s)"
        " ON CONFLICT (cluster_id) DO UPDATE SET"
        f" fresh_since = CASE WHEN {tl}.dead OR {tl}.heartbeat < excluded.heartbeat - %s"
        f" THEN excluded.heartbeat ELSE {tl}.fresh_since END,"
        " heartbeat = excluded.heartbeat, dead = excluded.dead, pid = excluded.pid,"
        " pid_start = excluded.pid_start, stat = excluded.stat,"
        " stat_expires = excluded.stat_expires",
        "same_host": f"SELECT cluster_id, pid, pid_start FROM {tl}"
        " WHERE host = %s AND NOT dead AND cluster_id <> %s",
        "mark_dead": f"UPDATE {tl} SET dead = TRUE"
        " WHERE cluster_id = %s AND pid = %s AND pid_start = %s",
        "cleanup": f"DELETE FROM {tl} WHERE (dead OR heartbeat < {now} - %s)"
        f" AND NOT EXISTS (SELECT 1 FROM {tq} WHERE owner = {tl}.cluster_id)",
        "seen_purge": f"DELETE FROM {ts} WHERE seen_at < %s",
        "stats": f"SELECT stat FROM {tl} WHERE queue = %s AND stat <> '' AND stat_expires >= {now}",
        "stat": f"SELECT stat FROM {tl} WHERE cluster_id = %s AND stat <> ''"
        f" AND stat_expires >= {now}",
    }


class OrmBroker(Broker):
    def __init__(self, list_key: str | None = None) -> None:
        super().__init__(list_key=list_key)
        self._setup()

    def __setstate__(self, state: Any) -> None:
        super().__setstate__(state)
        self._setup()

    def _setup(self) -> None:
        self._next_check = 0.0
        self._idle = False  # the last dequeue found nothing
        self._next_full_claim = 0.0
        self._sql: dict[str, str] | None = None
        # Set by the sentinel's first heartbeat; a broker used without a cluster
        # (a test, a script) is its own cluster and renews its lease itself.
        self.cluster_id: str | None = None
        self._standalone = False
        self._next_housekeeping = 0.0
        self._next_cleanup = 0.0
        self._next_seen_purge = 0.0
        self._dead_after = get_config().queue.dead_after
        self.host = host_id()  # a test may place the broker on another host
        self.coalesce = get_config().queue.coalesce  # processing/coalesce.py

    @staticmethod
    def get_connection(list_key: str | None = None) -> Any:
        return None

    # --- connections and statements ----------------------------------------------------

    def _connection(self, *, check: bool = False) -> Any:
        """The broker's connection; closes it first if it is broken or past its age
        (what the stock broker does on every call), when asked or once a second."""
        now = time.monotonic()
        if (check or now >= self._next_check) and transaction.get_autocommit(using=Conf.ORM):
            db.close_old_connections()
            self._next_check = now + _CHECK_INTERVAL_S
        return connections[Conf.ORM]

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        connection = self._connection()
        if self._sql is None:
            self._sql = _statements(connection)
        try:
            with connection.cursor() as cursor:
                yield cursor
        except DatabaseError:
            if transaction.get_autocommit(using=Conf.ORM):
                connection.close()  # reconnect on the next call, not in a second
            raise

    def _run(self, name: str, params: list[Any], *, fetch: str = "") -> Any:
        """Run one statement; ``fetch``: "one", "all" or nothing."""
        with self._cursor() as cursor:
            assert self._sql is not None
            cursor.execute(self._sql[name], params)
            if fetch == "one":
                return cursor.fetchone()
            return cursor.fetchall() if fetch == "all" else None

    def _claimable(self, me: str) -> list[Any]:
        return [me, self._dead_after, me, self._dead_after]

    # --- the queue ----------------------------------------------------------------------

    def atomic(self) -> Any:
        """Enqueues inside it are committed together or not at all."""
        return transaction.atomic(using=Conf.ORM)

    def seen_claim(self, keys: list[tuple[int, str]], *, window_s: float) -> set[tuple[int, str]]:
        """Record the event ids ``keys`` (distinct (source, id) pairs) as seen now;
        return those that were not seen within ``window_s``. Call it inside
        :meth:`atomic` with the enqueues, so the record and the events commit
        together: a concurrent transaction with the same id waits for this one
        and then finds it (PostgreSQL), or runs after it (SQLite's one writer).
        Keys are written in order, so two such transactions cannot deadlock."""
        connection = self._connection()
        table = connection.ops.quote_name(SeenMessage._meta.db_table)
        now = time.time()
        fresh: set[tuple[int, str]] = set()
        ordered = sorted(keys)
        with self._cursor() as cursor:
            for start in range(0, len(ordered), _SEEN_CHUNK):
                chunk = ordered[start : start + _SEEN_CHUNK]
                rows = ", ".join(["(%s, %s, %s)"] * len(chunk))
                params: list[Any] = []
                for source_id, message_id in chunk:
                    params += [source_id - BIAS, message_id, now]
                # A row older than the window (not purged yet) is taken over.
                cursor.execute(
                    f"INSERT INTO {table} (source_id, message_id, seen_at) VALUES {rows}"
                    " ON CONFLICT (source_id, message_id) DO UPDATE SET seen_at = excluded.seen_at"
                    f" WHERE {table}.seen_at < %s RETURNING source_id, message_id",
                    [*params, now - window_s],
                )
                fresh.update((int(sid) + BIAS, str(mid)) for sid, mid in cursor.fetchall())
        return fresh

    def seen_housekeeping(self, *, window_s: float) -> None:
        """Purge old event ids at most once a minute per process: the web
        processes' share (with ``queue.workers = 0`` no cluster runs to do it)."""
        now = time.monotonic()
        if now >= self._next_seen_purge:
            self._next_seen_purge = now + _CLEANUP_S
            self.seen_purge(window_s=window_s)

    def seen_purge(self, *, window_s: float) -> None:
        """Delete the event ids older than the dedup window."""
        self._run("seen_purge", [time.time() - window_s])

    def enqueue(self, task: str) -> int:
        with self._cursor() as cursor:
            assert self._sql is not None
            cursor.execute(self._sql["enqueue"], [self.list_key or Conf.CLUSTER_NAME, task])
            return int(cursor.fetchone()[0])

    def dequeue(self) -> list[tuple[Any, str]] | None:
        me = self._owner()
        with self._cursor() as cursor:
            assert self._sql is not None
            if self._idle:
                # The queue was empty: look before taking the write lock, so an idle
                # cluster polling every queue.poll seconds only reads.
                cursor.execute(self._sql["peek"], [self.list_key, *self._claimable(me)])
                if cursor.fetchone() is None:
                    self._wait()
                    return None
            # Dead clusters' tasks are looked for after an empty poll and at least
            # once a second; in between, the waiting tasks only (a cheaper scan).
            now = time.monotonic()
            full = self._idle or now >= self._next_full_claim
            if full:
                self._next_full_claim = now + FULL_CLAIM_INTERVAL_S
            cursor.execute(
                self._sql["claim" if full else "claim_waiting"],
                [Conf.RETRY, me, self.list_key]
                + (self._claimable(me) if full else [])
                + [Conf.BULK, me, self._dead_after],
            )
            tasks = sorted(cursor.fetchall())
        if tasks:
            self._idle = False
            claim = [
                (int(pk), mark_redelivered(body) if deliveries > 1 else str(body))
                for pk, body, deliveries in tasks
            ]
            return coalesce(claim) if self.coalesce else claim
        self._wait()
        return None

    def _owner(self) -> str:
        if self.cluster_id is None:
            self.cluster_id = f"standalone-{uuid.uuid4().hex}"
            self._standalone = True
        if self._standalone:
            self._heartbeat(stat="", ttl=0)
        return self.cluster_id

    def _wait(self) -> None:
        """An empty queue: a moment to check the connection, then spare the CPU."""
        self._idle = True
        self._connection(check=True)
        time.sleep(Conf.POLL)

    def delete(self, task_id: Any) -> None:
        """One task, or a coalesced task's tuple of them (processing/coalesce.py)."""
        self._delete_many(ack_ids(task_id))

    def _delete_many(self, task_ids: list[int]) -> None:
        connection = self._connection()
        table = connection.ops.quote_name(QueuedTask._meta.db_table)
        with self._cursor() as cursor:
            for start in range(0, len(task_ids), _ACK_CHUNK):
                chunk = task_ids[start : start + _ACK_CHUNK]
                marks = ", ".join(["%s"] * len(chunk))
                cursor.execute(f"DELETE FROM {table} WHERE id IN ({marks})", chunk)

    def acknowledge(self, task_id: Any) -> None:
        self.delete(task_id)

    def fail(self, task_id: Any) -> None:
        self.delete(task_id)

    def queue_size(self) -> int:
        """Tasks waiting for a worker (a claim of a dead cluster counts once taken over)."""
        return int(self._run("waiting", [self.list_key], fetch="one")[0])

    def lock_size(self) -> int:
        """Tasks claimed by a cluster."""
        return int(self._run("claimed", [self.list_key], fetch="one")[0])

    def oldest_task(self) -> str | None:
        """The payload of the oldest task not yet acknowledged (waiting or claimed)."""
        row = self._run("oldest", [self.list_key], fetch="one")
        return None if row is None else str(row[0])

    def purge_queue(self) -> None:
        self._run("purge", [self.list_key])

    def delete_queue(self) -> None:
        self.purge_queue()

    def ping(self) -> bool:
        return True

    def info(self) -> str:
        return f"ORM {Conf.ORM} (at-least-once, leases)"

    # --- heartbeats ---------------------------------------------------------------------

    def set_stat(self, key: str, value: str, timeout: int) -> None:
        """The sentinel's heartbeat: renew this cluster's lease (with its status)."""
        if self.cluster_id is None:
            self.cluster_id = cluster_id_of(key)
        self._heartbeat(stat=value, ttl=timeout, stopped=stat_stopped(value))

    def _heartbeat(self, *, stat: str, ttl: float, stopped: bool = False) -> None:
        assert self.cluster_id is not None
        pid = os.getpid()
        self._run(
            "heartbeat",
            [
                self.cluster_id,
                self.list_key,
                self.host,
                pid,
                process_start(pid),
                stopped,
                stat,
                ttl,
                self._dead_after,
            ],
        )
        now = time.monotonic()
        if now >= self._next_housekeeping:
            self._next_housekeeping = now + _HOUSEKEEPING_S
            self._mark_dead_of_this_host()
        if now >= self._next_cleanup:
            self._next_cleanup = now + _CLEANUP_S
            self._run("cleanup", [LEASE_CLEANUP_S])
            self.seen_purge(window_s=get_config().ingest.dedup_window.total_seconds())

    def _mark_dead_of_this_host(self) -> None:
        """Clusters of this host whose sentinel is gone are dead: their tasks are
        claimable at once."""
        rows = self._run("same_host", [self.host, self.cluster_id], fetch="all")
        for cluster_id, pid, pid_start in rows:
            if not process_alive(int(pid), int(pid_start)):
                self._run("mark_dead", [cluster_id, pid, pid_start])
                log.warning(
                    "cluster %s of this host (sentinel pid %s) is gone: its batches are"
                    " handed out again",
                    cluster_id,
                    pid,
                    extra={"dead_cluster": cluster_id},
                )

    def get_stat(self, key: str) -> str | None:
        row = self._run("stat", [cluster_id_of(key)], fetch="one")
        return None if row is None else str(row[0])

    def get_stats(self, pattern: str) -> list[str]:
        """The status of every cluster of this queue that reported in its stat's
        lifetime (3 s)."""
        return [str(row[0]) for row in self._run("stats", [self.list_key], fetch="all")]
