-- delete.lua: remove a breaker. (prepended with common.lua and window.lua)
--
-- KEYS  S, W, P (see common.lua)
-- KEYS[4]  T  the tombstone: a hash whose field gen is the highest
--             generation any breaker of this name had, and cv its highest
--             config version. It has no TTL: a client may hold a
--             generation for as long as it runs, and a breaker created
--             again, however much later, must start above both (see
--             put.lua and docs/design.md, "Generations across delete and
--             re-create"). It is one short hash per name ever deleted.
-- KEYS[5]  H  the config history (see put.lua): it outlives the breaker by
--             ARGV[2] ms, so a breaker created again within that time
--             goes on with it; a put makes it permanent again.
-- ARGV[1]  name
-- ARGV[2]  how long the history outlives the breaker, ms
-- Reply: 1 when the breaker existed, else 0.

local T, H = KEYS[4], KEYS[5]
local gen = tonumber(redis.call('HGET', S, 'gen'))
if gen and gen > (tonumber(redis.call('HGET', T, 'gen')) or 0) then
  redis.call('HSET', T, 'gen', string.format('%d', gen))
end
local cv = tonumber(redis.call('HGET', S, 'cv'))
if gen and not cv then
  cv = 1 -- written before config versions
end
if cv and cv > (tonumber(redis.call('HGET', T, 'cv')) or 0) then
  redis.call('HSET', T, 'cv', string.format('%d', cv))
end
if redis.call('DEL', S, W, P) == 0 then
  return 0
end
redis.call('PEXPIRE', H, ARGV[2])
redis.call('PUBLISH', CH, cjson.encode({type = 'breaker.deleted', name = NAME, at_ms = now}))
return 1
