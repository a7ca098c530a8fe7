-- put.lua: create or update a limit's config. (prepended with common.lua,
-- which has read the config)
--
-- KEYS[1]  C  the limit's config (see common.lua)
-- ARGV[1]  name (for the event)
-- ARGV[2]  capacity (1..1e9)
-- ARGV[3]  rate as common.lua's r (1..1e12)
-- ARGV[4]  a fresh random incarnation id, used only when creating
-- Reply: {created 0|1, capacity, rate}
--
-- An update keeps the incarnation and every bucket as it is: nothing is
-- refilled. From the next take on, a bucket refills at the new rate since
-- it was last written and is capped at the new capacity (a lower capacity
-- caps it). A bucket that has expired was full, and is full under the new
-- config too. One approximation remains: a bucket's expiry was set under
-- the config of its last grant, so after a lower rate or a higher capacity
-- it can expire, and count as full, before the new config alone would have
-- filled it. That gives a key at most one bucket's worth of extra tokens
-- per such change.

local created = 0
if not cap then
  created, inc = 1, ARGV[4]
end
redis.call('SET', KEYS[1], ARGV[2] .. ' ' .. ARGV[3] .. ' ' .. inc)
redis.call('PUBLISH', CH, cjson.encode({type = 'ratelimit.config', name = ARGV[1], at_ms = now}))
return {created, tonumber(ARGV[2]), tonumber(ARGV[3])}
