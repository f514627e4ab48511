# Long: the broker and its claim path (lost claims found again, the workers' side) read as one.
"""Our django-q2 broker on Redis: at-least-once, on a stream with a consumer group.

django-q2's own Redis broker takes a task with ``BLPOP``: a task a cluster had
fetched (up to ``queue.queue_limit`` of them) is gone if the cluster dies. Here
(:mod:`broker.base` for what both brokers share):

* ``commit``: one script (:mod:`broker.redis_commit`) checks the event ids, sets
  them (expiring after ``ingest.dedup_window``), adds the tasks to the stream
  ``django_q:<queue>:stream`` and sets the commit's marker, or adds nothing when
  one id was seen; a commit whose answer was lost is resolved by its marker;
* ``dequeue`` (``_claim``): one Lua script, atomic: if this cluster's lease is
  alive, take over the entries of dead clusters (``XCLAIM``; see
  :mod:`broker.leases`) and those a cluster (not a worker) held unacknowledged
  past ``queue.retry`` (``XPENDING … IDLE``, ``XCLAIM``), then read new entries
  (``XREADGROUP``), up to ``queue.bulk``; each cluster is one consumer of the
  group, named by its cluster id, and each of its queue workers another
  (``<cluster>|<pid>|<start>``), to which a worker moves the entries it adopts
  (:mod:`broker.workers`); the sentinel moves a dead worker's back to its
  cluster, claimable at once. The ids a claim took are recorded (a list expiring
  after a few minutes): a claim whose answer was lost (a frozen Redis runs it on
  waking) is found again at the next claim, its entries still held by this
  cluster handed out then. While Redis does not answer, a claim finds nothing
  after a short pause (django-q2's pusher would die on the error);
* ``acknowledge``: ``XACK`` + ``XDEL`` of a task's entries in one script (an
  acknowledged entry leaves the stream: its length is what is waiting or
  claimed); ``release``: the entries' idle time set past ``queue.retry``
  (``XCLAIM … IDLE``), so the next claim that takes over expired entries takes
  them;
* ``set_stat`` (the sentinel's heartbeat, every 0.5 s): the cluster's lease,
  with django-q2's status of it for /readyz, in the hash
  ``django_q:<queue>:leases``, stamped by Redis' clock.

Why a stream and not a reliable list (``LMOVE`` into a per-cluster list plus a
reaper): the consumer group already keeps, per entry, its owner, its idle time
and its delivery count, which is everything a reaper needs; with lists the same
takes a hash of payloads and a sorted set of claim times beside the lists. The
costs, measured, are in bench/RESULTS.md ("Redis broker").
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator, Sequence
from functools import partial
from typing import Any, cast

import redis
from django_q.conf import Conf
from redis.backoff import NoBackoff
from redis.retry import Retry

from broker import redis_scripts as scripts
from broker.base import Claimed, LeasedBroker
from broker.coalesce import ack_ids, coalesce
from broker.interface import Depth, Key, StoredTask
from broker.leases import LEASE_CLEANUP_S, Lease
from broker.packages import mark_redelivered
from broker.redis_commit import RESOLVE_CONNECT_S, answer_wait, commit_resolve, commit_run

__all__ = ["RedisStreamsBroker"]

log = logging.getLogger("telemetron.processing")

GROUP = "workers"
_ACK_CHUNK = 1000  # ids per script call (Lua's unpack)
_CLAIM_RECORD_MS = 10 * 60 * 1000  # how long a claim's record is kept
_RELEASED_IDLE_MS = 10 * 365 * 86400 * 1000  # idle "since long ago": past any queue.retry


class RedisStreamsBroker(LeasedBroker):
    def __init__(self, list_key: str | None = None) -> None:
        super().__init__(list_key=list_key or Conf.CLUSTER_NAME)

    def _setup(self) -> None:
        super()._setup()
        self.stream = f"django_q:{self.list_key}:stream"
        self.leases = f"django_q:{self.list_key}:leases"
        self._group_ready = False
        self._claim_record = f"django_q:{self.list_key}:claim:"
        self._lost_claims: list[str] = []  # records of claims whose answers were lost
        # Claims never sent twice by redis-py's retries: a lost answer is looked up.
        self._bounds: dict[str, Any] = getattr(self, "_bounds", {})
        once = self.get_connection(**self._bounds, retry=Retry(NoBackoff(), 0))
        self._claims_conn = {
            "claim": once.register_script(scripts.CLAIM),
            "found": once.register_script(scripts.FOUND),
        }
        self._version: str | None = None
        self._timeout = getattr(self, "_timeout", RESOLVE_CONNECT_S)
        self._scripts = {
            name: self.connection.register_script(source)
            for name, source in (
                ("heartbeat", scripts.HEARTBEAT),
                ("ack", scripts.ACK),
                ("sizes", scripts.SIZES),
                ("move", scripts.MOVE),
                ("give_back", scripts.GIVE_BACK),
                ("replace", scripts.REPLACE),
            )
        }

    @staticmethod
    def get_connection(list_key: str | None = None, **options: Any) -> redis.Redis:
        if isinstance(Conf.REDIS, str):
            return redis.from_url(Conf.REDIS, **options)
        return redis.Redis(**{**Conf.REDIS, **options})

    def bound_timeouts(self, seconds: float) -> None:
        """The request path's broker: every round trip bounded, never retried
        (redis-py would resend a command whose answer timed out)."""
        self._bounds = {"socket_timeout": seconds, "socket_connect_timeout": seconds}
        bounded = self.get_connection(**self._bounds, retry=Retry(NoBackoff(), 0))
        self.connection = cast(Any, bounded)  # django-q2's attribute, untyped
        self._timeout = seconds
        self._setup()

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
        """One script run on a connection of the pool (broker/redis_commit.py)."""
        names = [self.seen_key(source_id, message_id) for source_id, message_id in ids]
        keys = [self.commit_key(commit_id or uuid.uuid4().hex), *names, self.stream]
        wait = None if deadline is None else answer_wait(deadline, self._timeout)
        seen = commit_run(self.connection, keys, max(int(window_s * 1000), 1), tasks, wait)
        return {ids[int(i) - 1] for i in seen or []}

    def commit_key(self, commit_id: str) -> str:
        """The marker of a commit (it expires after a few minutes)."""
        return f"django_q:{self.list_key}:commit:{commit_id}"

    def commit_outcome(self, commit_id: str, *, deadline: float) -> bool | None:
        return commit_resolve(
            lambda **options: self.get_connection(**options),
            self.commit_key(commit_id),
            deadline=deadline,
            connect_timeout=self._timeout,
        )

    def seen_key(self, source_id: int, message_id: str) -> str:
        """The key recording an event id (it expires after the dedup window)."""
        return f"django_q:{self.list_key}:seen:{source_id}:{message_id}"

    def enqueue(self, task: str) -> str:
        return str(self.connection.xadd(self.stream, {"t": task}))

    def _ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            self.connection.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    def dequeue(self) -> list[tuple[Any, str]] | None:
        """A claim (LeasedBroker.dequeue, which pauses while Redis does not
        answer). A claim whose answer was lost (Redis may have run it, on
        waking) is looked up by its record first, and its entries this cluster
        still holds handed out: else they would stay claimed by this live
        cluster until ``queue.retry``."""
        self._claim_record = f"django_q:{self.list_key}:claim:{uuid.uuid4().hex}"
        if self._lost_claims:
            try:
                found = self._claims_found()
            except Exception as exc:
                self._pause(exc)
                return None
            if found:
                return self._handed(found)
        return super().dequeue()

    def _claims_found(self) -> list[Claimed]:
        """The entries of the claims whose answers were lost, claimed again by
        this cluster: those it still holds (not acknowledged since, not adopted
        by a worker, not taken over by another cluster), recorded as this
        claim's own (its answer may be lost too)."""
        records = list(self._lost_claims)
        keys = [self.stream, self._claim_record, *records]
        args: list[str | int] = [GROUP, self._owner(), _CLAIM_RECORD_MS]
        entries = self._lost(lambda: self._claims_conn["found"](keys=keys, args=args))
        self._lost_claims = [r for r in self._lost_claims if r not in records]
        if entries:
            log.warning("%d batches of a claim whose answer was lost handed out", len(entries))
        return [(_text(i), _payload(f), True) for i, f in entries]

    def _lost(self, run: Any) -> Any:
        """``run()``, a claim: when its answer is lost (Redis may still run it),
        its record is kept to be looked up at the next claim."""
        try:
            return run()
        except (redis.ConnectionError, redis.TimeoutError):
            if self._claim_record not in self._lost_claims:
                self._lost_claims.append(self._claim_record)
            raise

    def _handed(self, claimed: list[Claimed]) -> list[tuple[Any, str]]:
        """Claimed tasks as the pusher takes them (LeasedBroker.dequeue)."""
        tasks = [(ack, mark_redelivered(body) if again else body) for ack, body, again in claimed]
        return coalesce(tasks) if self.coalesce else tasks

    def _claim(self, me: str, *, take_over: bool) -> list[Claimed]:
        self._ensure_group()
        args = [GROUP, me, Conf.BULK, self._dead_after, int(Conf.RETRY * 1000), LEASE_CLEANUP_S]
        args += ["1" if take_over else "0", _CLAIM_RECORD_MS]
        keys = [self.stream, self.leases, self._claim_record]
        claim = self._claims_conn["claim"]
        try:
            result = self._lost(lambda: claim(keys=keys, args=args))
        except redis.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            self._group_ready = False  # the stream was deleted: make it again
            self._ensure_group()
            result = self._lost(lambda: claim(keys=keys, args=args))
        if not result:
            return []
        again, new = result
        return [(_text(i), _payload(f), True) for i, f in again] + [
            (_text(i), _payload(f), False) for i, f in new
        ]

    def acknowledge(self, task_id: Any) -> None:
        """One entry, or a coalesced task's tuple of them (broker/coalesce.py)."""
        ids = ack_ids(task_id)
        for start in range(0, len(ids), _ACK_CHUNK):
            args = [GROUP, *ids[start : start + _ACK_CHUNK]]
            self._outage_waited(
                partial(self._scripts["ack"], keys=[self.stream], args=args), doing="acknowledge"
            )

    def release(self, task_id: Any) -> None:
        assert self.cluster_id is not None, "release what this broker claimed"
        self.connection.xclaim(
            self.stream, GROUP, self.cluster_id, 0, ack_ids(task_id), idle=_RELEASED_IDLE_MS
        )

    # --- the workers' side of a claim ---------------------------------------------------

    def _adopt(self, ids: list[Any], owner: str, pid: int, start: int) -> int:
        args = [GROUP, owner, _worker(owner, pid, start), 0, *ids]
        return int(self._scripts["move"](keys=[self.stream], args=args))

    def _disown(self, ids: list[Any], owner: str, pid: int, start: int) -> None:
        args = [GROUP, _worker(owner, pid, start), owner, 0, *ids]
        self._scripts["move"](keys=[self.stream], args=args)

    def _consumers(self) -> list[str]:
        """The consumers of this cluster: itself and its workers."""
        assert self.cluster_id is not None
        try:
            found = self.connection.xinfo_consumers(self.stream, GROUP)
        except redis.ResponseError:  # no stream or group yet
            return []
        names = [_text(c["name"]) for c in found]
        return [n for n in names if n == self.cluster_id or n.startswith(f"{self.cluster_id}|")]

    def _holders(self) -> list[tuple[int, int]]:
        holders = []
        for name in self._consumers():
            if "|" in name:
                _, pid, start = name.rsplit("|", 2)
                holders.append((int(pid), int(start)))
        return holders

    def _give_back(self, consumers: list[str]) -> int:
        if not consumers:
            return 0
        args = [GROUP, self.cluster_id, _RELEASED_IDLE_MS, *consumers]
        return int(self._scripts["give_back"](keys=[self.stream], args=args))

    def _release_holder(self, pid: int, start: int) -> int:
        assert self.cluster_id is not None
        return self._give_back([_worker(self.cluster_id, pid, start)])

    def _release_owner(self) -> int:
        return self._give_back(self._consumers())

    def depth(self) -> Depth:
        waiting, claimed = self._scripts["sizes"](keys=[self.stream], args=[GROUP])
        return Depth(waiting=int(waiting), claimed=int(claimed))

    def oldest_task(self) -> str | None:
        """The oldest entry not yet acknowledged (acknowledged ones are deleted)."""
        entries = self.connection.xrange(self.stream, count=1)
        return _text(entries[0][1].get(b"t", b"")) if entries else None

    def tasks_scan(self, *, chunk: int = 100) -> Iterator[list[StoredTask]]:
        newest = self.connection.xrevrange(self.stream, count=1)
        if not newest:
            return
        start, end = "-", _text(newest[0][0])
        while True:
            entries = self.connection.xrange(self.stream, min=start, max=end, count=chunk)
            if not entries:
                return
            first, last = _text(entries[0][0]), _text(entries[-1][0])
            try:
                held = self.connection.xpending_range(self.stream, GROUP, first, last, chunk)
            except redis.ResponseError:  # no group yet: no cluster ever claimed
                held = []
            pending = {_text(p["message_id"]) for p in held}
            yield [StoredTask(_text(k), _text(f[b"t"]), _text(k) in pending) for k, f in entries]
            start = f"({last}"

    def task_replace(self, key: Any, payload: str | None) -> bool:
        done = self._scripts["replace"](keys=[self.stream], args=[GROUP, key, payload or ""])
        return bool(done)

    def purge_queue(self) -> None:
        self.connection.delete(self.stream)
        self._group_ready = False

    def delete_queue(self) -> None:
        self.connection.delete(self.stream, self.leases)
        self._group_ready = False

    def ping(self) -> bool:
        try:
            return bool(self.connection.ping())
        except redis.ConnectionError:
            log.error("Can not connect to Redis server.")
            raise

    def info(self) -> str:
        if self._version is None:
            self._version = str(self.connection.info("server")["redis_version"])
        return f"Redis {self._version} (stream, at-least-once)"

    # --- leases -------------------------------------------------------------------------

    def _renew(self, *, stat: str, ttl: float, stopped: bool) -> None:
        host, pid, pid_start = self._lease_args()
        args = [self.cluster_id, host, pid, pid_start, stat, ttl, self._dead_after]
        self._scripts["heartbeat"](keys=[self.leases], args=[*args, "1" if stopped else "0"])

    def _leases(self) -> dict[str, dict[str, Any]]:
        raw = self.connection.hgetall(self.leases)
        return {_text(k): json.loads(v) for k, v in raw.items()}

    def _leases_of_host(self) -> list[Lease]:
        return [
            Lease(cluster_id, lease["host"], int(lease["pid"]), int(lease["start"]))
            for cluster_id, lease in self._leases().items()
            if not lease.get("dead") and cluster_id != self.cluster_id
            and lease["host"] == self.host
        ]  # fmt: skip

    def _mark_dead(self, lease: Lease) -> None:
        raw = self.connection.hget(self.leases, lease.cluster_id)
        now = json.loads(raw) if raw else None
        if now and (int(now["pid"]), int(now["start"])) == (lease.pid, lease.pid_start):
            self.connection.hset(self.leases, lease.cluster_id, json.dumps({**now, "dead": True}))

    def _stats(self) -> dict[str, str]:
        now = float(self.connection.time()[0])
        return {
            cluster_id: lease["stat"]
            for cluster_id, lease in self._leases().items()
            if lease.get("stat") and lease["stat_exp"] >= now
        }


def _worker(cluster: str, pid: int, start: int) -> str:
    """The consumer name of a queue worker of ``cluster``."""
    return f"{cluster}|{pid}|{start}"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _payload(fields: Any) -> str:
    """The task of a stream entry's fields (``[b"t", payload]`` from Lua)."""
    pairs = dict(zip(fields[::2], fields[1::2], strict=True))
    return _text(pairs.get(b"t", pairs.get("t")))
