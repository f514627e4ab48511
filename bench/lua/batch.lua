-- wrk: POST /ingest/batch, 100 events per request (varied sourceId and type).
package.path = debug.getinfo(1, "S").source:match("@?(.*/)") .. "?.lua;" .. package.path
local common = require("common")

local EVENTS = 100
local POOL_SIZE = 50
local next_request

function init(args)
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
  local headers = { ["Content-Type"] = "application/json" }
  local pool = {}
  for i = 1, POOL_SIZE do
    local events = {}
    for j = 1, EVENTS do
      events[j] = common.event(math.random(1, 10000), common.types[math.random(#common.types)],
        math.random(0, 3599), i * EVENTS + j)
    end
    pool[i] = wrk.format("POST", "/ingest/batch", headers, "[" .. table.concat(events, ",") .. "]")
  end
  next_request = common.cycler(pool)
end

function request()
  return next_request()
end

function done(summary, latency, requests)
  common.done(summary, latency, EVENTS)
end
