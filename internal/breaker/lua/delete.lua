-- delete.lua: remove a breaker. (prepended with common.lua)
--
-- KEYS  S, W, P (see common.lua)
-- KEYS[4]  T  the tombstone: a hash whose field gen is the highest
--             generation any breaker of this name had. It has no TTL: a
--             client may hold a generation for as long as it runs, and a
--             breaker created again, however much later, must start above
--             it (see put.lua and docs/design.md, "Generations across
--             delete and re-create"). It is one short hash per name ever
--             deleted.
-- ARGV[1]  name
-- Reply: 1 when the breaker existed, else 0.

local T = KEYS[4]
local gen = tonumber(redis.call('HGET', S, 'gen'))
if gen and gen > (tonumber(redis.call('HGET', T, 'gen')) or 0) then
  redis.call('HSET', T, 'gen', string.format('%d', gen))
end
if redis.call('DEL', S, W, P) == 0 then
  return 0
end
redis.call('PUBLISH', CH, cjson.encode({type = 'breaker.deleted', name = NAME, at_ms = now}))
return 1
