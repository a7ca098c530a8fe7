-- history.lua: a limit's config versions, newest first. (stands alone)
--
-- KEYS[1]  C  the limit's config (see common.lua)
-- KEYS[2]  T  the tombstone (unused)
-- KEYS[3]  H  the config history (see put.lua)
-- ARGV[1]  how many entries to return, at most
-- Reply: false when the limit does not exist, else the entries as put.lua
-- wrote them (JSON strings).

if redis.call('EXISTS', KEYS[1]) == 0 then
  return false
end
return redis.call('LRANGE', KEYS[3], 0, tonumber(ARGV[1]) - 1)
