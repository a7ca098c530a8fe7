-- history.lua: a breaker's config versions, newest first. (prepended with
-- common.lua and window.lua)
--
-- KEYS  S, W, P (see common.lua)
-- KEYS[4]  T  the tombstone (unused)
-- KEYS[5]  H  the config history (see put.lua)
-- ARGV[1]  name
-- ARGV[2]  how many entries to return, at most
-- Reply: false when the breaker does not exist, else the entries as
-- put.lua wrote them (JSON strings).

if redis.call('EXISTS', S) == 0 then
  return false
end
return redis.call('LRANGE', KEYS[5], 0, tonumber(ARGV[2]) - 1)
