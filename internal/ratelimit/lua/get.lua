-- get.lua: a limit's config and, when asked, one key's bucket now.
-- (prepended with common.lua, which has read both)
--
-- KEYS[1]  C  the limit's config (see common.lua)
-- KEYS[2]  B  a key's bucket; optional
-- Reply: false when the limit does not exist, else
--   {capacity, rate, now_ms, level, config_version}: rate as common.lua's
--   r; level in millionths of a token, -1 without KEYS[2].
-- It writes nothing.

if not cap then
  return false
end
return {cap, r, now, l or -1, tonumber(string.match(cs, '^%d+ %d+ %S+ (%d+)$')) or 1}
