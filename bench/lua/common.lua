-- Shared by the wrk scripts: a pool of pre-formatted requests (so wrk spends no
-- time building bodies), and a machine-readable summary line in done().
local M = {}

M.types = { "Heartbeat", "PageView", "Click", "Error", "Purchase", "Login", "Logout", "Search" }

function M.event(source_id, type_, second, seq)
  return string.format(
    '{"sourceId":%d,"type":"%s","timestamp":"2026-11-26T12:%02d:%02dZ","data":{"seq":%d}}',
    source_id, type_, math.floor(second / 60) % 60, second % 60, seq)
end

-- Cycle through `pool` in request().
function M.cycler(pool)
  local i = 0
  return function()
    i = i + 1
    if i > #pool then i = 1 end
    return pool[i]
  end
end

-- One line the report parses: BENCH_JSON {...}; latencies in microseconds.
function M.done(summary, latency, events_per_request)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"duration_us":%d,"requests":%d,"bytes":%d,"events_per_request":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"mean":%.1f,"max":%d,"p50":%d,"p90":%d,"p99":%d,"p999":%d}}\n',
    summary.duration, summary.requests, summary.bytes, events_per_request,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.max, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9)))
end

return M
