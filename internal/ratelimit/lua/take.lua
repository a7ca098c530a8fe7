-- take.lua: take tokens from one key's bucket. (prepended with common.lua,
-- which has read the config and the bucket)
--
-- KEYS[1]  C  the limit's config (see common.lua)
-- KEYS[2]  B  the key's bucket
-- ARGV[1]  tokens asked, n (1..1e9; checked against the capacity here)
-- ARGV[2]  partial: '1' grants min(available, n), '0' grants n or nothing
-- Reply:
--   false                when the limit does not exist
--   {-1, capacity}       when n > capacity; nothing is written
--   {allowed 0|1, granted, remaining, retry_after_ms, reset_ms, capacity, now_ms}
--     remaining       whole tokens left after the take
--     retry_after_ms  0 when tokens were granted; else the least whole
--                     number of ms after which all n tokens would be there
--     reset_ms        ms until the bucket is full again
--
-- Only a grant writes. The bucket then expires (PXAT) at the first
-- millisecond it is full again, so an idle key costs no memory and an
-- absent bucket is a full one. A denial writes nothing: the level is a
-- function of time, so there is nothing to record.

if not cap then
  return false
end
local n = tonumber(ARGV[1])
if n > cap then
  return {-1, cap}
end

local want = n * U
local granted = 0
if l >= want then
  granted = n
elseif ARGV[2] == '1' then
  granted = idiv(l, U)
end

local allowed, retry, reset = 0, 0, 0
if granted > 0 then
  allowed = 1
  l = l - granted * U
  reset = cdiv(capu - l, r)
  redis.call('SET', KEYS[2], string.format('%d %d %s', l, t, inc), 'PXAT', string.format('%d', t + reset))
else
  reset = cdiv(capu - l, r)
  retry = t - now + cdiv(want - l, r)
end

return {allowed, granted, idiv(l, U), retry, t - now + reset, cap, now}
