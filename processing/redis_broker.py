# Long: the broker and its three Lua scripts read best side by side.
"""Our django-q2 broker on Redis: at-least-once, on a stream with a consumer group.

django-q2's own Redis broker takes a task with ``BLPOP``: a task a cluster had
fetched (up to ``queue.queue_limit`` of them) is gone if the cluster dies. Here:

* ``enqueue``: ``XADD`` to the stream ``django_q:<queue>:stream``; several of one
  request in one ``MULTI``/``EXEC`` (:meth:`RedisStreamsBroker.atomic`);
* ``dequeue``: one Lua script, atomic: if this cluster's lease is alive, take
  over the entries of dead clusters (``XCLAIM``; see :mod:`processing.leases`)
  and those unacknowledged past ``queue.retry`` (``XAUTOCLAIM``), then read new
  entries (``XREADGROUP``), up to ``queue.bulk``; each cluster is one consumer
  of the group, named by its cluster id;
* ``enqueue_unseen``: the exactly-once record of event ids (ops/broker.py): one
  script checks the ids, sets them (expiring after ``ingest.dedup_window``) and
  adds the tasks (``XADD``), or adds nothing when one was seen;
* ``acknowledge``: ``XACK`` + ``XDEL`` of a task's entries in one script (an
  acknowledged entry leaves the stream: its length is what is waiting or claimed);
* ``set_stat`` (the sentinel's heartbeat, every 0.5 s): the cluster's lease,
  with django-q2's status of it for /readyz, in the hash
  ``django_q:<queue>:leases``, stamped by Redis' clock (the last one, of a clean
  stop, marks the lease dead); once a second the leases of this host whose
  sentinel is gone are marked dead.

Why a stream and not a reliable list (``LMOVE`` into a per-cluster list plus a
reaper): the consumer group already keeps, per entry, its owner, its idle time
and its delivery count, which is everything a reaper needs; with lists the same
takes a hash of payloads and a sorted set of claim times beside the lists. The
costs, measured, are in bench/RESULTS.md ("Redis broker").
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis
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
from telemetron_site.config import get_config

__all__ = ["RedisStreamsBroker"]

log = logging.getLogger("telemetron.processing")

GROUP = "workers"
_HOUSEKEEPING_S = 1.0

_NOW = "local t = redis.call('TIME') local now = tonumber(t[1]) + tonumber(t[2]) / 1e6 "

# KEYS: leases. ARGV: cluster id, host, pid, pid start, stat, stat ttl, dead_after,
# stopped ('1': a clean stop's last heartbeat, which marks the lease dead).
_HEARTBEAT = (
    _NOW
    + """
local fresh = now
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old then
  local o = cjson.decode(old)
  if not o.dead and o.hb >= now - tonumber(ARGV[7]) then fresh = o.fresh end
end
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode({host = ARGV[2], pid = tonumber(ARGV[3]),
  start = tonumber(ARGV[4]), hb = now, fresh = fresh, dead = ARGV[8] == '1', stat = ARGV[5],
  stat_exp = now + tonumber(ARGV[6])}))
return tostring(now)
"""
)

# KEYS: stream, leases. ARGV: group, me, count, dead_after, retry ms, cleanup s,
# take over ('1': look for dead clusters' and expired entries first).
# Returns {taken over: {id, fields}..., new: {id, fields}...}, or false when this
# cluster's lease is not alive.
_CLAIM = (
    _NOW
    + """
local group, me, count, grace = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local mine = redis.call('HGET', KEYS[2], me)
if not mine then return false end
mine = cjson.decode(mine)
if mine.dead or mine.hb < now - grace then return false end
local regular = mine.fresh <= now - grace
local again = {}
local consumers = {}
if ARGV[7] == '1' then consumers = redis.call('XINFO', 'CONSUMERS', KEYS[1], group) end
for _, c in ipairs(consumers) do
  local name, pending = c[2], c[4]
  if name ~= me then
    local l = redis.call('HGET', KEYS[2], name)
    local dead, gone = not l and regular, not l
    if l then
      l = cjson.decode(l)
      dead = l.dead or (regular and l.hb < now - grace)
      gone = dead and (l.dead or l.hb < now - tonumber(ARGV[6]))
    end
    if dead and pending > 0 and #again < count then
      local ids = {}
      for _, p in ipairs(redis.call('XPENDING', KEYS[1], group, '-', '+', count - #again, name)) do
        ids[#ids + 1] = p[1]
      end
      for _, e in ipairs(redis.call('XCLAIM', KEYS[1], group, me, 0, unpack(ids))) do
        if e then again[#again + 1] = e end
      end
    elseif gone and pending == 0 then
      redis.call('XGROUP', 'DELCONSUMER', KEYS[1], group, name)
      redis.call('HDEL', KEYS[2], name)
    end
  end
end
if ARGV[7] == '1' and #again < count then
  local r = redis.call('XAUTOCLAIM', KEYS[1], group, me, ARGV[5], '0-0', 'COUNT', count - #again)
  for _, e in ipairs(r[2]) do if e then again[#again + 1] = e end end
end
local new = {}
if #again < count then
  local r = redis.call('XREADGROUP', 'GROUP', group, me, 'COUNT', count - #again,
    'STREAMS', KEYS[1], '>')
  if r then new = r[1][2] end
end
return {again, new}
"""
)

# KEYS: the dedup keys of event ids, then the stream. ARGV: window ms, then the tasks.
# When none of the ids is seen: records them all (expiring after the window) and
# adds the tasks, in one atomic step; else adds nothing and returns the 1-based
# indexes of the ids already seen.
_ENQUEUE_UNSEEN = """
local n = #KEYS - 1
local seen = {}
for i = 1, n do
  if redis.call('EXISTS', KEYS[i]) == 1 then seen[#seen + 1] = i end
end
if #seen > 0 then return seen end
for i = 1, n do redis.call('SET', KEYS[i], '1', 'PX', ARGV[1]) end
for i = 2, #ARGV do redis.call('XADD', KEYS[n + 1], '*', 't', ARGV[i]) end
return seen
"""

# KEYS: stream. ARGV: group, entry ids.
_ACK = (
    "redis.call('XACK', KEYS[1], ARGV[1], unpack(ARGV, 2))"
    " return redis.call('XDEL', KEYS[1], unpack(ARGV, 2))"
)
_ACK_CHUNK = 1000  # ids per script call (Lua's unpack)

# KEYS: stream. ARGV: group. Waiting = in the stream and not claimed.
_SIZES = """
local ok, p = pcall(redis.call, 'XPENDING', KEYS[1], ARGV[1])
local claimed = 0
if ok then claimed = p[1] end
return {redis.call('XLEN', KEYS[1]) - claimed, claimed}
"""


class RedisStreamsBroker(Broker):
    def __init__(self, list_key: str | None = None) -> None:
        super().__init__(list_key=list_key or Conf.CLUSTER_NAME)
        self._setup()

    def __setstate__(self, state: Any) -> None:
        super().__setstate__(state)
        self._setup()

    def _setup(self) -> None:
        self.stream = f"django_q:{self.list_key}:stream"
        self.leases = f"django_q:{self.list_key}:leases"
        self.cluster_id: str | None = None  # from the sentinel's first heartbeat
        self._standalone = False
        self._group_ready = False
        self._idle = False  # the last dequeue found nothing
        self._next_full_claim = 0.0
        self._version: str | None = None
        self._next_housekeeping = 0.0
        self._pipes = threading.local()
        self._dead_after = get_config().queue.dead_after
        self.coalesce = get_config().queue.coalesce  # processing/coalesce.py
        self.host = host_id()  # a test may place the broker on another host
        self._scripts = {
            name: self.connection.register_script(source)
            for name, source in (
                ("heartbeat", _HEARTBEAT),
                ("claim", _CLAIM),
                ("ack", _ACK),
                ("sizes", _SIZES),
                ("enqueue_unseen", _ENQUEUE_UNSEEN),
            )
        }

    @staticmethod
    def get_connection(list_key: str | None = None) -> redis.Redis:
        return (
            redis.from_url(Conf.REDIS) if isinstance(Conf.REDIS, str) else redis.Redis(**Conf.REDIS)
        )

    # --- the queue ----------------------------------------------------------------------

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """Enqueues inside it are sent in one MULTI/EXEC, or not at all."""
        pipe = self.connection.pipeline(transaction=True)
        self._pipes.current = pipe
        try:
            yield
            pipe.execute()
        finally:
            self._pipes.current = None
            pipe.reset()

    @contextmanager
    def capture(self) -> Iterator[list[str]]:
        """Enqueues inside it are collected, not sent (for :meth:`enqueue_unseen`)."""
        tasks: list[str] = []
        self._pipes.capture = tasks
        try:
            yield tasks
        finally:
            self._pipes.capture = None

    def enqueue_unseen(
        self, keys: list[tuple[int, str]], tasks: list[str], *, window_s: float
    ) -> set[tuple[int, str]]:
        """Add ``tasks`` and record the event ids ``keys`` in one atomic step (a
        Lua script), unless one of the ids is already recorded: then nothing is
        added and those ids are returned (the caller drops them and tries again).
        The records expire after ``window_s`` (Redis purges them)."""
        names = [self.seen_key(source_id, message_id) for source_id, message_id in keys]
        seen = self._scripts["enqueue_unseen"](
            keys=[*names, self.stream], args=[max(int(window_s * 1000), 1), *tasks]
        )
        return {keys[int(i) - 1] for i in seen or []}

    def seen_key(self, source_id: int, message_id: str) -> str:
        return f"django_q:{self.list_key}:seen:{source_id}:{message_id}"

    def enqueue(self, task: str) -> str | None:
        capture = getattr(self._pipes, "capture", None)
        if capture is not None:
            capture.append(task)
            return None
        pipe = getattr(self._pipes, "current", None)
        if pipe is not None:
            pipe.xadd(self.stream, {"t": task})
            return None
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
        me = self._owner()
        self._ensure_group()
        # Dead clusters' and expired entries are looked for after an empty poll and
        # at least once a second; in between, new entries only.
        now = time.monotonic()
        full = self._idle or now >= self._next_full_claim
        if full:
            self._next_full_claim = now + FULL_CLAIM_INTERVAL_S
        args = [GROUP, me, Conf.BULK, self._dead_after, int(Conf.RETRY * 1000), LEASE_CLEANUP_S]
        args.append("1" if full else "0")
        try:
            result = self._scripts["claim"](keys=[self.stream, self.leases], args=args)
        except redis.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            self._group_ready = False  # the stream was deleted: make it again
            self._ensure_group()
            result = self._scripts["claim"](keys=[self.stream, self.leases], args=args)
        tasks: list[tuple[str, str]] = []
        if result:
            again, new = result
            tasks += [(_text(i), mark_redelivered(_payload(f))) for i, f in again]
            tasks += [(_text(i), _payload(f)) for i, f in new]
        self._idle = not tasks
        if tasks:
            return coalesce(tasks) if self.coalesce else tasks
        time.sleep(Conf.POLL)
        return None

    def _owner(self) -> str:
        if self.cluster_id is None:
            self.cluster_id = f"standalone-{os.urandom(8).hex()}"
            self._standalone = True
        if self._standalone:
            self._heartbeat(stat="", ttl=0)
        return self.cluster_id

    def acknowledge(self, task_id: Any) -> None:
        """One entry, or a coalesced task's tuple of them (processing/coalesce.py)."""
        ids = ack_ids(task_id)
        for start in range(0, len(ids), _ACK_CHUNK):
            self._scripts["ack"](keys=[self.stream], args=[GROUP, *ids[start : start + _ACK_CHUNK]])

    def delete(self, task_id: Any) -> None:
        self.acknowledge(task_id)

    def fail(self, task_id: Any) -> None:
        self.acknowledge(task_id)

    def _sizes(self) -> tuple[int, int]:
        waiting, claimed = self._scripts["sizes"](keys=[self.stream], args=[GROUP])
        return int(waiting), int(claimed)

    def queue_size(self) -> int:
        """Entries no cluster has claimed (a dead cluster's count once taken over)."""
        return self._sizes()[0]

    def lock_size(self) -> int:
        """Entries claimed by a cluster and not acknowledged."""
        return self._sizes()[1]

    def oldest_task(self) -> str | None:
        """The oldest entry not yet acknowledged (acknowledged ones are deleted)."""
        entries = self.connection.xrange(self.stream, count=1)
        return _text(entries[0][1].get(b"t", b"")) if entries else None

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

    # --- heartbeats ---------------------------------------------------------------------

    def set_stat(self, key: str, value: str, timeout: int) -> None:
        """The sentinel's heartbeat: renew this cluster's lease (with its status)."""
        if self.cluster_id is None:
            self.cluster_id = cluster_id_of(key)
        self._heartbeat(stat=value, ttl=timeout, stopped=stat_stopped(value))

    def _heartbeat(self, *, stat: str, ttl: float, stopped: bool = False) -> None:
        pid = os.getpid()
        args = [self.cluster_id, self.host, pid, process_start(pid), stat, ttl, self._dead_after]
        self._scripts["heartbeat"](keys=[self.leases], args=[*args, "1" if stopped else "0"])
        now = time.monotonic()
        if now >= self._next_housekeeping:
            self._next_housekeeping = now + _HOUSEKEEPING_S
            self._mark_dead_of_this_host()

    def _leases(self) -> dict[str, dict[str, Any]]:
        raw = self.connection.hgetall(self.leases)
        return {_text(k): json.loads(v) for k, v in raw.items()}

    def _mark_dead_of_this_host(self) -> None:
        """Clusters of this host whose sentinel is gone are dead: their entries
        are taken over at the next claim of any cluster."""
        for cluster_id, lease in self._leases().items():
            if lease.get("dead") or cluster_id == self.cluster_id or lease["host"] != self.host:
                continue
            if not process_alive(int(lease["pid"]), int(lease["start"])):
                self.connection.hset(self.leases, cluster_id, json.dumps({**lease, "dead": True}))
                log.warning(
                    "cluster %s of this host (sentinel pid %s) is gone: its batches are"
                    " handed out again",
                    cluster_id,
                    lease["pid"],
                    extra={"dead_cluster": cluster_id},
                )

    def _live_stats(self) -> dict[str, str]:
        now = float(self.connection.time()[0])
        return {
            cluster_id: lease["stat"]
            for cluster_id, lease in self._leases().items()
            if lease.get("stat") and lease["stat_exp"] >= now
        }

    def get_stat(self, key: str) -> str | None:
        return self._live_stats().get(cluster_id_of(key))

    def get_stats(self, pattern: str) -> list[str]:
        """The status of every cluster of this queue that reported in its stat's
        lifetime (3 s)."""
        return list(self._live_stats().values())


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _payload(fields: Any) -> str:
    """The task of a stream entry's fields (``[b"t", payload]`` from Lua)."""
    pairs = dict(zip(fields[::2], fields[1::2], strict=True))
    return _text(pairs.get(b"t", pairs.get("t")))
