-- delete.lua: remove a breaker. (prepended with common.lua)
--
-- KEYS  S, W, P (see common.lua)
-- ARGV[1]  name
-- Reply: 1 when the breaker existed, else 0.

if redis.call('DEL', S, W, P) == 0 then
  return 0
end
redis.call('PUBLISH', CH, cjson.encode({type = 'breaker.deleted', name = NAME, at_ms = now}))
return 1
