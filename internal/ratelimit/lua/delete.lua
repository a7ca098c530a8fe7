-- delete.lua: remove a limit. (stands alone)
--
-- KEYS[1]  C  the limit's config (see common.lua)
-- KEYS[2]  T  the tombstone: the highest config version any limit of this
--             name had. It has no TTL, so a limit created again, however
--             much later, starts above it; one short string per name ever
--             deleted.
-- KEYS[3]  H  the config history (see put.lua): it outlives the limit by
--             ARGV[2] ms, so a limit created again within that time goes on
--             with it; a put makes it permanent again.
-- ARGV[1]  name (for the event)
-- ARGV[2]  how long the history outlives the limit, ms
-- Reply: 1 when the limit existed, else 0.
--
-- Only the config is deleted: takes find no limit from now on. The buckets
-- could be found only by scanning the keyspace, and need not be: each
-- expires by its TTL (when it would be full under the config of its last
-- grant, at most capacity / rate after it), and a limit created again under
-- the same name gets a new incarnation, so it never reads them.

local C, T, H = KEYS[1], KEYS[2], KEYS[3]
local cs = redis.call('GET', C)
if not cs then
  return 0
end
local cv = tonumber(string.match(cs, '^%d+ %d+ %S+ (%d+)$')) or 1
if cv > (tonumber(redis.call('GET', T)) or 0) then
  redis.call('SET', T, string.format('%d', cv))
end
redis.call('DEL', C)
redis.call('PEXPIRE', H, ARGV[2])
local tm = redis.call('TIME')
redis.call('PUBLISH', CH, cjson.encode({type = 'ratelimit.deleted', name = ARGV[1],
  at_ms = tm[1] * 1000 + math.floor(tm[2] / 1000)}))
return 1
