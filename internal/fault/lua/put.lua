-- put.lua: set a fault, replacing any fault of that name.
--
-- KEYS[1]  F  the fault: a hash {spec, by, at, exp} that expires with it
-- ARGV[1]  name (for the event)
-- ARGV[2]  the fault's fields as JSON (validated by the Go code)
-- ARGV[3]  who sets it (a token name)
-- ARGV[4]  ttl_ms, at least 1
-- Reply: {at_ms, expires_at_ms}, both of the store's clock.
--
-- The key expires at expires_at, so the fault ends by itself even if no
-- control plane runs then. Clients stop applying it at expires_at too
-- (see docs/drills.md).

local F = KEYS[1]
local tm = redis.call('TIME')
local now = tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)
local ttl = tonumber(ARGV[4])
local exp = now + ttl
redis.call('DEL', F)
redis.call('HSET', F, 'spec', ARGV[2], 'by', ARGV[3], 'at', string.format('%d', now), 'exp', string.format('%d', exp))
redis.call('PEXPIRE', F, ttl)
redis.call('PUBLISH', CH, cjson.encode({type = 'fault.config', name = ARGV[1], at_ms = now}))
return {now, exp}
