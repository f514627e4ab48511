# Long: the broker and its three Lua scripts read best side by side.
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
  :mod:`broker.leases`) and those unacknowledged past ``queue.retry``
  (``XAUTOCLAIM``), then read new entries (``XREADGROUP``), up to
  ``queue.bulk``; each cluster is one consumer of the group, named by its
  cluster id;
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
from collections.abc import Sequence
from functools import partial
from typing import Any

import redis
from django_q.conf import Conf

from broker.base import Claimed, LeasedBroker
from broker.coalesce import ack_ids
from broker.interface import Depth, Key
from broker.leases import LEASE_CLEANUP_S, Lease

__all__ = ["RedisStreamsBroker"]

log = logging.getLogger("telemetron.processing")

GROUP = "workers"
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
            args = [GROUP, *ids[start : start + _ACK_CHUNK]]
            self._outage_waited(
                partial(self._scripts["ack"], keys=[self.stream], args=args), doing="acknowledge"
            )

    def release(self, task_id: Any) -> None:
        assert self.cluster_id is not None, "release what this broker claimed"
        self.connection.xclaim(
            self.stream, GROUP, self.cluster_id, 0, ack_ids(task_id), idle=_RELEASED_IDLE_MS
        )

    def depth(self) -> Depth:
        waiting, claimed = self._scripts["sizes"](keys=[self.stream], args=[GROUP])
        return Depth(waiting=int(waiting), claimed=int(claimed))

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


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _payload(fields: Any) -> str:
    """The task of a stream entry's fields (``[b"t", payload]`` from Lua)."""
    pairs = dict(zip(fields[::2], fields[1::2], strict=True))
    return _text(pairs.get(b"t", pairs.get("t")))
