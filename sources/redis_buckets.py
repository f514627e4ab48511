"""Token buckets in Redis (``ingest.rate_limit = "redis"``), shared by every
node: one Lua script takes the tokens of all a request's sources atomically
(all or none), on Redis' own clock (``TIME``), so nodes' clocks do not matter.

A Redis round trip costs ~60 µs of a web process's CPU, four times the budget
of the whole access check, so a process takes tokens in *leases*: when its
lease of a source runs out it asks for what the request needs plus a chunk
(a tenth of the burst), and spends the chunk locally. Every accepted event
still had its token from Redis, so across all nodes the bound holds:
accepted <= rate x window + burst. A lease unused for ``LEASE_S`` is dropped
(at most processes x chunk tokens a second go unused, never over-admitted).
If Redis cannot be reached the limit is not applied (logged once a minute):
ingest does not stop because its limiter's store is down.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

from sources.buckets import Want

__all__ = ["LEASE_S", "RedisBuckets"]

log = logging.getLogger("telemetron.sources")

LEASE_S = 1.0

_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local tokens = {}
local wait = 0
for i = 1, #KEYS do
  local need = tonumber(ARGV[4*i-3])
  local rate = tonumber(ARGV[4*i-1])
  local burst = tonumber(ARGV[4*i])
  local v = redis.call('HMGET', KEYS[i], 't', 's')
  local tk = tonumber(v[1])
  local st = tonumber(v[2])
  if tk == nil or st == nil then tk = burst; st = now end
  tk = math.min(burst, tk + math.max(now - st, 0) * rate)
  tokens[i] = tk
  if tk < need then wait = math.max(wait, (need - tk) / rate) end
end
if wait > 0 then return {'0', tostring(wait)} end
local out = {'1'}
for i = 1, #KEYS do
  local need = tonumber(ARGV[4*i-3])
  local want = tonumber(ARGV[4*i-2])
  local rate = tonumber(ARGV[4*i-1])
  local burst = tonumber(ARGV[4*i])
  local give = math.max(need, math.min(want, math.floor(tokens[i])))
  redis.call('HSET', KEYS[i], 't', tostring(tokens[i] - give), 's', tostring(now))
  redis.call('PEXPIRE', KEYS[i], math.ceil(burst / rate * 1000) + 1000)
  out[#out + 1] = tostring(give)
end
return out
"""


class RedisBuckets:
    def __init__(self, client: Any, *, prefix: str) -> None:
        self._script = client.register_script(_TAKE)
        self._prefix = prefix
        self._leases: dict[int, tuple[int, float]] = {}  # source id -> (tokens, expiry)
        self._lock = threading.Lock()
        self._next_error_log = 0.0

    def key(self, source_id: int) -> str:
        return f"{self._prefix}:rate:{source_id}"

    def take(self, wants: Sequence[Want]) -> float:
        now = time.monotonic()
        with self._lock:
            local = {}
            remote: list[tuple[int, int, int, float, int]] = []  # sid, need, want, rate, burst
            for sid, n, rate, burst in wants:
                tokens, expiry = self._leases.get(sid, (0, 0.0))
                tokens = tokens if expiry > now else 0
                local[sid] = tokens
                if tokens < n:
                    chunk = max(1, burst // 10)
                    remote.append((sid, n - tokens, n - tokens + chunk, rate, burst))
            granted: dict[int, int] = {}
            if remote:
                reply = self._ask(remote)
                if reply is None:
                    return 0.0  # Redis down: not limited
                if reply[0] == b"0":
                    return float(reply[1])
                granted = {r[0]: int(g) for r, g in zip(remote, reply[1:], strict=True)}
            for sid, n, _, _ in wants:
                left = local[sid] + granted.get(sid, 0) - n
                self._leases[sid] = (left, now + LEASE_S)
            return 0.0

    def _ask(self, remote: list[tuple[int, int, int, float, int]]) -> list[bytes] | None:
        keys = [self.key(sid) for sid, *_ in remote]
        args: list[object] = []
        for _, need, want, rate, burst in remote:
            args += [need, want, repr(float(rate)), burst]
        try:
            return [
                v if isinstance(v, bytes) else str(v).encode() for v in self._script(keys, args)
            ]
        except Exception as exc:
            if time.monotonic() >= self._next_error_log:
                log.warning("rate limits not applied: Redis unreachable (%s)", exc)
                self._next_error_log = time.monotonic() + 60
            return None

    def give_back(self, wants: Sequence[Want]) -> None:
        """Tokens of a request not accepted after all go back to this process's lease."""
        now = time.monotonic()
        with self._lock:
            for sid, n, _, _ in wants:
                tokens, expiry = self._leases.get(sid, (0, 0.0))
                if expiry > now:
                    self._leases[sid] = (tokens + n, expiry)
