-- get.lua: a breaker as it stands now. (prepended with common.lua and window.lua)
--
-- KEYS  S, W, P (see common.lua)
-- ARGV[1]  name
-- Reply: false when the breaker does not exist, else common.lua's view().
-- It writes only what time alone changes: an expired override ends and old
-- buckets leave a time window.

if not load() then
  return false
end
tick()
return view()
