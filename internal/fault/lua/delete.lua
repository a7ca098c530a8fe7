-- delete.lua: end a fault early.
--
-- KEYS[1]  F  the fault (see put.lua)
-- ARGV[1]  name (for the event)
-- Reply: 1 when there was a fault, else 0.

local tm = redis.call('TIME')
local now = tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)
if redis.call('DEL', KEYS[1]) == 0 then
  return 0
end
redis.call('PUBLISH', CH, cjson.encode({type = 'fault.deleted', name = ARGV[1], at_ms = now}))
return 1
