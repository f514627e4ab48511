# Long: the ORM broker's round trips (commit, claim, the workers' side, leases) in one class.
"""Our django-q2 broker on the database: at-least-once, with each round trip one
SQL statement, and a crashed cluster's tasks handed out again within seconds.

Tasks live in our own table (:class:`~broker.models.QueuedTask`: django-q2's
``OrmQ`` has no owner column), the clusters' leases in
:class:`~broker.models.ClusterLease` (see :mod:`broker.leases` for when a
claim is taken over; :mod:`broker.base` for what both brokers share). Every
time is the database's clock, so the nodes' clocks never matter.

* ``commit``: the commit's marker (:class:`~broker.models.CommitMarker`), then
  one INSERT per task, in one transaction; with event ids, one upsert per 300
  ids of :class:`~broker.models.SeenMessage` first, in the same transaction
  (rolled back when one was seen). A commit whose answer was lost is resolved
  on a connection of its own (``commit_outcome``): inserting the same marker as
  void either conflicts with the commit's (it landed; on PostgreSQL the insert
  waits for the commit's transaction to end) or voids it (it did not, and
  never will: its own insert would now conflict);
* ``dequeue`` (``_claim``): one ``UPDATE … WHERE id IN (SELECT … ORDER BY id
  LIMIT bulk) RETURNING``: the oldest claimable tasks (waiting, claim expired
  and held by no worker, or claimed by a dead cluster), FIFO, claimed atomically for this cluster
  (PostgreSQL adds ``FOR UPDATE SKIP LOCKED``; SQLite runs one writer at a
  time), and only while this cluster's own lease is alive. A claim whose answer
  was lost is looked up by its token (:mod:`broker.orm_lost`). After an empty poll,
  the same condition is read first, so an idle cluster does not take SQLite's
  write lock every ``queue.poll``;
* ``acknowledge``: one DELETE (of a coalesced task's tasks too); ``release``:
  one UPDATE; a worker's ``adopt`` (holder: its pid and start time) and a
  sentinel's give-back of a dead worker's tasks: one UPDATE each;
* ``set_stat`` (the sentinel's heartbeat, every 0.5 s): one upsert of the lease,
  which also holds django-q2's status of the cluster for /readyz (the last one,
  of a clean stop, marks the lease dead: nothing is left to take over); once a minute
  old leases and the event ids older than ``ingest.dedup_window`` are deleted.

Stale connections are closed at most once a second and whenever the queue is
empty, instead of on every call; one that failed is closed at once. The
statements, each with its reason, are in :mod:`broker.orm_sql`.
``RETURNING`` needs SQLite 3.35 or later (Debian 12's Python has 3.40).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from django import db
from django.db import DatabaseError, IntegrityError, connections, transaction
from django_q.conf import Conf

from broker.base import Claimed, LeasedBroker
from broker.coalesce import ack_ids
from broker.interface import CommitFailed, Depth, Key, StoredTask
from broker.leases import LEASE_CLEANUP_S, Lease
from broker.models import SeenMessage
from broker.orm_commit import commit_resolve, marker_statements
from broker.orm_lost import LostClaims, claim_token
from broker.orm_sql import orm_statements
from core.config import get_config
from core.fields import BIAS

__all__ = ["OrmBroker"]

_CHECK_INTERVAL_S = 1.0
_SEEN_PURGE_S = 60.0  # a web process purges old event ids at most this often
_SEEN_CHUNK = 300  # rows per dedup INSERT (3 parameters each)
_IDS_CHUNK = 500  # ids per DELETE or UPDATE (SQLite's parameter limit)
_MARKER_KEEP_S = 15 * 60.0  # a commit's marker outlives any resolution of it


class _Seen(Exception):
    """Event ids of a commit already recorded: its transaction is rolled back."""

    def __init__(self, keys: set[Key]) -> None:
        super().__init__(f"{len(keys)} event ids seen")
        self.keys = keys


class OrmBroker(LeasedBroker):
    def _setup(self) -> None:
        super()._setup()
        self._next_check = 0.0
        self._next_seen_purge = 0.0
        self._sql: dict[str, str] | None = None
        self._lost_claims = LostClaims()

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
            self._sql = {**orm_statements(connection), **marker_statements(connection)}
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

    def _by_ids(self, name: str, task_ids: list[Any], params: Sequence[Any] = ()) -> int:
        """Statement ``name`` (with ``params`` first) on the tasks ``task_ids``, a
        chunk at a time; the rows it changed."""
        changed = 0
        with self._cursor() as cursor:
            assert self._sql is not None
            for start in range(0, len(task_ids), _IDS_CHUNK):
                chunk = task_ids[start : start + _IDS_CHUNK]
                marks = ", ".join(["%s"] * len(chunk))
                cursor.execute(f"{self._sql[name]} id IN ({marks})", [*params, *chunk])
                changed += max(cursor.rowcount, 0)
        return changed

    def _claimable(self, me: str) -> list[Any]:
        return [me, self._dead_after, me, self._dead_after]

    # --- the queue ----------------------------------------------------------------------

    def commit(
        self,
        tasks: Sequence[str],
        *,
        ids: Sequence[Key] = (),
        window_s: float = 0,
        commit_id: str = "",
        deadline: float | None = None,
    ) -> set[Key]:
        connection = self._connection()
        try:
            connection.ensure_connection()
        except DatabaseError as exc:
            raise CommitFailed(f"database not reached: {exc}") from exc
        commit_id = commit_id or uuid.uuid4().hex
        if len(tasks) == 1 and not ids and self._one_statement(connection):
            # The marker and the task in one statement (its own transaction):
            # one round trip instead of four. Whatever fails may have landed.
            try:
                self._run("enqueue_marked", [commit_id, time.time(), self.list_key, tasks[0]])
            except IntegrityError as exc:  # refused (its id voided): certainly not landed
                raise CommitFailed(f"{type(exc).__name__}: {exc}") from exc
            self._housekeeping(window_s=0)
            return set()
        seen: set[Key] = set()
        committing = False
        try:
            with transaction.atomic(using=Conf.ORM):
                self._run("mark", [commit_id, time.time()])
                if ids:
                    fresh = self._seen_record(ids, window_s=window_s)
                    if len(fresh) < len(ids):
                        raise _Seen(set(ids) - fresh)
                for task in tasks:
                    self.enqueue(task)
                committing = True  # what fails from here on may have landed
        except _Seen as found:
            seen = found.keys
        except DatabaseError as exc:
            if committing:
                raise
            raise CommitFailed(f"{type(exc).__name__}: {exc}") from exc
        self._housekeeping(window_s=window_s if ids else 0)  # after the commit, not in it
        return seen

    @staticmethod
    def _one_statement(connection: Any) -> bool:
        """PostgreSQL outside a transaction: a statement's CTE can insert too."""
        return bool(connection.vendor == "postgresql" and connection.get_autocommit())

    def commit_outcome(self, commit_id: str, *, deadline: float) -> bool | None:
        return commit_resolve(Conf.ORM, commit_id, deadline=deadline)

    def _housekeeping(self, *, window_s: float) -> None:
        """Purge old event ids (``window_s`` > 0) and old commit markers at most
        once a minute per process: the web processes' share (with
        ``queue.workers = 0`` no cluster runs to do it)."""
        now = time.monotonic()
        if now >= self._next_seen_purge:
            self._next_seen_purge = now + _SEEN_PURGE_S
            if window_s:
                self.seen_purge(window_s=window_s)
            self._run("marker_purge", [time.time() - _MARKER_KEEP_S])

    def bound_timeouts(self, seconds: float) -> None:
        """Nothing to bound here: a database round trip takes what it takes (a
        commit whose answer is late is resolved by ``commit_outcome``)."""

    def _seen_record(self, keys: Sequence[Key], *, window_s: float) -> set[Key]:
        """Record the event ids ``keys`` (distinct (source, id) pairs) as seen now;
        return those that were not seen within ``window_s``. Inside the commit's
        transaction, so the record and the events commit together: a concurrent
        transaction with the same id waits for this one and then finds it
        (PostgreSQL), or runs after it (SQLite's one writer). Keys are written in
        order, so two such transactions cannot deadlock."""
        table = self._connection().ops.quote_name(SeenMessage._meta.db_table)
        now = time.time()
        fresh: set[Key] = set()
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

    def seen_purge(self, *, window_s: float) -> None:
        """Delete the event ids older than the dedup window."""
        self._run("seen_purge", [time.time() - window_s])

    def enqueue(self, task: str) -> int:
        with self._cursor() as cursor:
            assert self._sql is not None
            cursor.execute(self._sql["enqueue"], [self.list_key, task])
            return int(cursor.fetchone()[0])

    def _claim(self, me: str, *, take_over: bool) -> list[Claimed]:
        if lost := self._lost_claims.due():
            found = self._claims_found(me, lost)
            if found:
                return found
        token = claim_token()
        with self._cursor() as cursor:
            assert self._sql is not None
            if self._idle:
                # The queue was empty: look before taking the write lock, so an idle
                # cluster polling every queue.poll seconds only reads.
                cursor.execute(self._sql["peek"], [self.list_key, *self._claimable(me)])
                if cursor.fetchone() is None:
                    return []
            try:
                cursor.execute(
                    self._sql["claim" if take_over else "claim_waiting"],
                    [Conf.RETRY, me, token, self.list_key]
                    + (self._claimable(me) if take_over else [])
                    + [Conf.BULK, me, self._dead_after],
                )
                rows = cursor.fetchall()
            except DatabaseError:
                if cursor.db.vendor != "sqlite":  # in this process: an error is a rollback
                    self._lost_claims.lost(token)  # over a connection: it may have run
                raise
        return _claimed(rows)

    def _claims_found(self, me: str, tokens: list[int]) -> list[Claimed]:
        """The tasks of the claims whose answers were lost (``tokens``) that this
        cluster still holds and no worker has started (not acknowledged,
        released or taken over since), claimed again under a token of their own."""
        token = claim_token()
        marks = ", ".join(["%s"] * len(tokens))
        with self._cursor() as cursor:
            assert self._sql is not None
            try:
                cursor.execute(
                    f"{self._sql['found']} IN ({marks}) RETURNING id, payload, deliveries",
                    [Conf.RETRY, token, self.list_key, me, me, self._dead_after, *tokens],
                )
                rows = cursor.fetchall()
            except DatabaseError:
                self._lost_claims.lost(token)
                raise
        self._lost_claims.answered(tokens, found=len(rows))
        return _claimed(rows)

    def _wait(self) -> None:
        self._connection(check=True)  # an empty queue: a moment to check the connection
        super()._wait()

    def acknowledge(self, task_id: Any) -> None:
        """One task, or a coalesced task's tuple of them (broker/coalesce.py)."""
        ids = ack_ids(task_id)
        self._outage_waited(lambda: self._by_ids("acknowledge", ids), doing="acknowledge")

    def release(self, task_id: Any) -> None:
        self._by_ids("release", ack_ids(task_id))

    # --- the workers' side of a claim ---------------------------------------------------

    def _adopt(self, ids: list[Any], owner: str, pid: int, start: int) -> int:
        return self._by_ids("adopt", ids, [pid, start, owner])

    def _disown(self, ids: list[Any], owner: str, pid: int, start: int) -> None:
        self._by_ids("disown", ids, [Conf.RETRY, owner, pid, start])

    def _holders(self) -> list[tuple[int, int]]:
        rows = self._run("holders", [self.list_key, self.cluster_id], fetch="all")
        return [(int(pid), int(start)) for pid, start in rows]

    def _release_holder(self, pid: int, start: int) -> int:
        return self._rowcount("release_holder", [self.list_key, self.cluster_id, pid, start])

    def _release_owner(self) -> int:
        return self._rowcount("release_owner", [self.list_key, self.cluster_id])

    def _rowcount(self, name: str, params: list[Any]) -> int:
        with self._cursor() as cursor:
            assert self._sql is not None
            cursor.execute(self._sql[name], params)
            return max(cursor.rowcount, 0)

    def depth(self) -> Depth:
        waiting, claimed = self._run("depth", [self.list_key], fetch="one")
        return Depth(waiting=int(waiting), claimed=int(claimed))

    def oldest_task(self) -> str | None:
        row = self._run("oldest", [self.list_key], fetch="one")
        return None if row is None else str(row[0])

    def tasks_scan(self, *, chunk: int = 100) -> Iterator[list[StoredTask]]:
        last_id = self._run("last_id", [self.list_key], fetch="one")[0]
        after = 0
        while last_id is not None:
            rows = self._run("scan", [self.list_key, after, last_id, chunk], fetch="all")
            if not rows:
                return
            yield [StoredTask(int(pk), str(body), bool(held)) for pk, body, held in rows]
            after = rows[-1][0]

    def task_replace(self, key: Any, payload: str | None) -> bool:
        with self._cursor() as cursor:
            assert self._sql is not None
            if payload is None:
                cursor.execute(self._sql["remove"], [key])
            else:
                cursor.execute(self._sql["replace"], [payload, key])
            return bool(cursor.rowcount == 1)

    def purge_queue(self) -> None:
        self._run("purge", [self.list_key])

    def delete_queue(self) -> None:
        self.purge_queue()

    def ping(self) -> bool:
        return True

    def info(self) -> str:
        return f"ORM {Conf.ORM} (at-least-once, leases)"

    # --- leases -------------------------------------------------------------------------

    def _renew(self, *, stat: str, ttl: float, stopped: bool) -> None:
        host, pid, pid_start = self._lease_args()
        params = [self.cluster_id, self.list_key, host, pid, pid_start, stopped, stat, ttl]
        self._run("heartbeat", [*params, self._dead_after])

    def _leases_of_host(self) -> list[Lease]:
        rows = self._run("same_host", [self.host, self.cluster_id], fetch="all")
        return [Lease(str(cid), self.host, int(pid), int(start)) for cid, pid, start in rows]

    def _mark_dead(self, lease: Lease) -> None:
        self._run("mark_dead", [lease.cluster_id, lease.pid, lease.pid_start])

    def _cleanup(self) -> None:
        self._run("cleanup", [LEASE_CLEANUP_S])
        self.seen_purge(window_s=get_config().ingest.dedup_window.total_seconds())

    def _stats(self) -> dict[str, str]:
        rows = self._run("stats", [self.list_key], fetch="all")
        return {str(cluster_id): str(stat) for cluster_id, stat in rows}


def _claimed(rows: list[Any]) -> list[Claimed]:
    """A claim's rows as the pusher takes them, oldest first."""
    return [(int(pk), str(body), deliveries > 1) for pk, body, deliveries in sorted(rows)]
