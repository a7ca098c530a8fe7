-- delete.lua: remove a limit. (prepended with common.lua)
--
-- KEYS[1]  C  the limit's config (see common.lua)
-- ARGV[1]  name (for the event)
-- Reply: 1 when the limit existed, else 0.
--
-- Only the config is deleted: takes find no limit from now on. The buckets
-- cannot be listed in one slot-safe call, and need not be: each expires by
-- its TTL (by the time it would be full, at most capacity / rate after its
-- last take), and a limit created again under the same name gets a new
-- incarnation, so it never reads them.

if redis.call('DEL', KEYS[1]) == 0 then
  return 0
end
redis.call('PUBLISH', CH, cjson.encode({type = 'ratelimit.deleted', name = ARGV[1], at_ms = now}))
return 1
