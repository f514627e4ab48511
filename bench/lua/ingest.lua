-- wrk: POST /ingest, one event per request; sourceId (1..10000) and type vary.
package.path = debug.getinfo(1, "S").source:match("@?(.*/)") .. "?.lua;" .. package.path
local common = require("common")

local POOL_SIZE = 2000
local next_request

function init(args)
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
  local headers = { ["Content-Type"] = "application/json" }
  local pool = {}
  for i = 1, POOL_SIZE do
    local body = common.event(math.random(1, 10000), common.types[math.random(#common.types)],
      math.random(0, 3599), i)
    pool[i] = wrk.format("POST", "/ingest", headers, body)
  end
  next_request = common.cycler(pool)
end

function request()
  return next_request()
end

function done(summary, latency, requests)
  common.done(summary, latency, 1)
end
