-- delete.lua: remove a limit. (prepended with common.lua)
--
-- KEYS[1]  C  the limit's config (see common.lua)
-- ARGV[1]  name (for the event)
-- Reply: 1 when the limit existed, else 0.
--
-- Only the config is deleted: takes find no limit from now on. The buckets
-- could be found only by scanning the keyspace, and need not be: each
-- expires by its TTL (when it would be full under the config of its last
-- grant, at most capacity / rate after it), and a limit created again under
-- the same name gets a new incarnation, so it never reads them.

if redis.call('DEL', KEYS[1]) == 0 then
  return 0
end
redis.call('PUBLISH', CH, cjson.encode({type = 'ratelimit.deleted', name = ARGV[1], at_ms = now}))
return 1
