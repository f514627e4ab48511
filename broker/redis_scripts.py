"""The Redis broker's Lua scripts (broker/redis_streams.py), each one atomic step
on the stream of tasks and the hash of the clusters' leases. The commit's own
scripts (the commit with its marker, its resolution) are in broker/redis_commit.py."""

from __future__ import annotations

__all__ = [
    "ACK",
    "CLAIM",
    "FOUND",
    "GIVE_BACK",
    "HEARTBEAT",
    "MOVE",
    "REPLACE",
    "SIZES",
]

_NOW = "local t = redis.call('TIME') local now = tonumber(t[1]) + tonumber(t[2]) / 1e6 "

# KEYS: leases. ARGV: cluster id, host, pid, pid start, stat, stat ttl, dead_after,
# stopped ('1': a clean stop's last heartbeat, which marks the lease dead).
HEARTBEAT = (
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

# KEYS: stream, leases, this claim's record. ARGV: group, me, count, dead_after,
# retry ms, cleanup s, take over ('1': look for dead clusters' and expired
# entries first), record ttl ms.
# Consumers: a cluster (named by its id: what its pusher claimed) and its queue
# workers ("<cluster>|<pid>|<start>": what each adopted). Entries of a dead
# cluster (of its workers too) are taken over; a cluster's entries expire after
# queue.retry, a worker's never (the sentinel gives a dead worker's back).
# Returns {taken over: {id, fields}..., new: {id, fields}...}, or false when this
# cluster's lease is not alive. The ids claimed are recorded (a list expiring
# after the ttl): a claim whose answer was lost is found again (FOUND).
CLAIM = (
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
  local cluster = string.match(name, '^[^|]*')
  if cluster ~= me then
    local l = redis.call('HGET', KEYS[2], cluster)
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
      if name == cluster then redis.call('HDEL', KEYS[2], name) end
    end
  end
end
for _, c in ipairs(consumers) do
  local name, pending = c[2], c[4]
  if pending > 0 and #again < count and not string.find(name, '|', 1, true) then
    local ids = {}
    for _, p in ipairs(redis.call('XPENDING', KEYS[1], group, 'IDLE', tonumber(ARGV[5]), '-', '+',
        count - #again, name)) do
      ids[#ids + 1] = p[1]
    end
    if #ids > 0 then
      for _, e in ipairs(redis.call('XCLAIM', KEYS[1], group, me, ARGV[5], unpack(ids))) do
        if e then again[#again + 1] = e end
      end
    end
  end
end
local new = {}
if #again < count then
  local r = redis.call('XREADGROUP', 'GROUP', group, me, 'COUNT', count - #again,
    'STREAMS', KEYS[1], '>')
  if r then new = r[1][2] end
end
local taken = {}
for _, e in ipairs(again) do taken[#taken + 1] = e[1] end
for _, e in ipairs(new) do taken[#taken + 1] = e[1] end
if #taken > 0 then
  redis.call('RPUSH', KEYS[3], unpack(taken))
  redis.call('PEXPIRE', KEYS[3], ARGV[8])
end
return {again, new}
"""
)

# KEYS: stream, this claim's record, the records of claims whose answers were
# lost. ARGV: group, me, record ttl ms. Their entries this cluster still holds
# itself (not acknowledged since, not adopted by one of its workers, not taken
# over by another cluster) claimed again and recorded as this claim's, as
# {id, fields}...; the old records deleted.
FOUND = """
local ids = {}
for i = 3, #KEYS do
  for _, id in ipairs(redis.call('LRANGE', KEYS[i], 0, -1)) do
    local ok, p = pcall(redis.call, 'XPENDING', KEYS[1], ARGV[1], id, id, 1)
    if ok and p[1] and p[1][2] == ARGV[2] then ids[#ids + 1] = id end
  end
  redis.call('DEL', KEYS[i])
end
local found = {}
if #ids == 0 then return found end
for _, e in ipairs(redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, unpack(ids))) do
  if e then found[#found + 1] = e end
end
if #found > 0 then
  local taken = {}
  for _, e in ipairs(found) do taken[#taken + 1] = e[1] end
  redis.call('RPUSH', KEYS[2], unpack(taken))
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
end
return found
"""

# KEYS: stream. ARGV: group, from, to, idle ms, entry ids. The entries still pending
# for consumer ``from`` moved to ``to`` (idle for that long: 0 = from now), without
# counting a delivery; returns how many.
MOVE = """
local n = 0
for i = 5, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if p[1] and p[1][2] == ARGV[2] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[3], 0, ARGV[i], 'IDLE', ARGV[4], 'JUSTID')
    n = n + 1
  end
end
return n
"""

# KEYS: stream. ARGV: group, cluster, idle ms, consumers. Every entry of those
# consumers (the cluster's and its workers') given to the cluster, idle for that
# long (claimable at once); the workers' consumers deleted. Returns how many.
GIVE_BACK = """
local n = 0
for i = 4, #ARGV do
  local ok, pending = pcall(redis.call, 'XPENDING', KEYS[1], ARGV[1], '-', '+', 100000, ARGV[i])
  if ok then
    local ids = {}
    for _, p in ipairs(pending) do ids[#ids + 1] = p[1] end
    for s = 1, #ids, 1000 do
      local args = {KEYS[1], ARGV[1], ARGV[2], 0, unpack(ids, s, math.min(s + 999, #ids))}
      args[#args + 1] = 'IDLE'
      args[#args + 1] = ARGV[3]
      args[#args + 1] = 'JUSTID'
      redis.call('XCLAIM', unpack(args))
    end
    n = n + #ids
    if ARGV[i] ~= ARGV[2] then redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[i]) end
  end
end
return n
"""

# KEYS: stream. ARGV: group, entry ids.
ACK = (
    "redis.call('XACK', KEYS[1], ARGV[1], unpack(ARGV, 2))"
    " return redis.call('XDEL', KEYS[1], unpack(ARGV, 2))"
)
# KEYS: stream. ARGV: group. Waiting = in the stream and not claimed.
SIZES = """
local ok, p = pcall(redis.call, 'XPENDING', KEYS[1], ARGV[1])
local claimed = 0
if ok then claimed = p[1] end
return {redis.call('XLEN', KEYS[1]) - claimed, claimed}
"""


# KEYS: stream. ARGV: group, entry id, package ('': remove). A waiting entry (in the
# stream, held by no consumer: no cluster and no queue worker) is deleted and, with a
# package, added again at the end.
REPLACE = """
local ok, p = pcall(redis.call, 'XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
if ok and #p > 0 then return 0 end
if #redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[2]) == 0 then return 0 end
redis.call('XDEL', KEYS[1], ARGV[2])
if ARGV[3] ~= '' then redis.call('XADD', KEYS[1], '*', 't', ARGV[3]) end
return 1
"""
