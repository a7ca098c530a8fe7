-- get.lua: a fault, if it is active.
--
-- KEYS[1]  F  the fault (see put.lua)
-- Reply: false when there is none or it has expired, else
-- {spec, by, at_ms, expires_at_ms}.

local tm = redis.call('TIME')
local now = tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)
local v = redis.call('HMGET', KEYS[1], 'spec', 'by', 'at', 'exp')
if not v[1] or tonumber(v[4]) <= now then
  return false
end
return v
