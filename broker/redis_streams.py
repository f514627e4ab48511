"""Our django-q2 broker on Redis: at-least-once, on a stream with a consumer group.

django-q2's own Redis broker takes a task with ``BLPOP``: a task a cluster had
fetched (up to ``queue.queue_limit`` of them) is gone if the cluster dies. Here
(:mod:`broker.base` for what both brokers share):

* ``commit``: ``XADD`` to the stream ``django_q:<queue>:stream``, several in one
  ``MULTI``/``EXEC``; with event ids, one script checks the ids, sets them
  (expiring after ``ingest.dedup_window``) and adds the tasks, or adds nothing
  when one was seen;
* ``dequeue`` (``_claim``): one Lua script, atomic: if this cluster's lease is
  alive, take over the entries of dead clusters (``XCLAIM``; see
  :mod:`broker.leases`) and those a cluster (not a worker) held unacknowledged
  past ``queue.retry`` (``XPENDING … IDLE``, ``XCLAIM``), then read new entries
  (``XREADGROUP``), up to ``queue.bulk``; each cluster is one consumer of the
  group, named by its cluster id, and each of its queue workers another
  (``<cluster>|<pid>|<start>``), to which a worker moves the entries it adopts
  (:mod:`broker.workers`); the sentinel moves a dead worker's back to its
  cluster, claimable at once;
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
from collections.abc import Iterator, Sequence
from typing import Any

import redis
from django_q.conf import Conf

from broker import redis_scripts as scripts
from broker.base import Claimed, LeasedBroker
from broker.coalesce import ack_ids
from broker.interface import Depth, Key, StoredTask
from broker.leases import LEASE_CLEANUP_S, Lease

__all__ = ["RedisStreamsBroker"]

log = logging.getLogger("telemetron.processing")

GROUP = "workers"
_ACK_CHUNK = 1000  # ids per script call (Lua's unpack)

_RELEASED_IDLE_MS = 10 * 365 * 86400 * 1000  # idle "since long ago": past any queue.retry


class RedisStreamsBroker(LeasedBroker):
    def __init__(self, list_key: str | None = None) -> None:
        super().__init__(list_key=list_key or Conf.CLUSTER_NAME)

    def _setup(self) -> None:
        super()._setup()
        self.stream = f"django_q:{self.list_key}:stream"
        self.leases = f"django_q:{self.list_key}:leases"
        self._group_ready = False
        self._version: str | None = None
        self._scripts = {
            name: self.connection.register_script(source)
            for name, source in (
                ("heartbeat", scripts.HEARTBEAT),
                ("claim", scripts.CLAIM),
                ("ack", scripts.ACK),
                ("sizes", scripts.SIZES),
                ("enqueue_unseen", scripts.ENQUEUE_UNSEEN),
                ("move", scripts.MOVE),
                ("give_back", scripts.GIVE_BACK),
                ("replace", scripts.REPLACE),
            )
        }

    @staticmethod
    def get_connection(list_key: str | None = None) -> redis.Redis:
        return (
            redis.from_url(Conf.REDIS) if isinstance(Conf.REDIS, str) else redis.Redis(**Conf.REDIS)
        )

    # --- the queue ----------------------------------------------------------------------

    def commit(
        self, tasks: Sequence[str], *, ids: Sequence[Key] = (), window_s: float = 0
    ) -> set[Key]:
        if ids:
            names = [self.seen_key(source_id, message_id) for source_id, message_id in ids]
            seen = self._scripts["enqueue_unseen"](
                keys=[*names, self.stream], args=[max(int(window_s * 1000), 1), *tasks]
            )
            return {ids[int(i) - 1] for i in seen or []}
        if len(tasks) == 1:
            self.enqueue(tasks[0])
            return set()
        pipe = self.connection.pipeline(transaction=True)
        for task in tasks:
            pipe.xadd(self.stream, {"t": task})
        pipe.execute()
        return set()

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

    def _claim(self, me: str, *, take_over: bool) -> list[Claimed]:
        self._ensure_group()
        args = [GROUP, me, Conf.BULK, self._dead_after, int(Conf.RETRY * 1000), LEASE_CLEANUP_S]
        args.append("1" if take_over else "0")
        try:
            result = self._scripts["claim"](keys=[self.stream, self.leases], args=args)
        except redis.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            self._group_ready = False  # the stream was deleted: make it again
            self._ensure_group()
            result = self._scripts["claim"](keys=[self.stream, self.leases], args=args)
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
            self._scripts["ack"](keys=[self.stream], args=[GROUP, *ids[start : start + _ACK_CHUNK]])

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
