-- put.lua: create or update a limit's config. (stands alone: it reads the
-- config as common.lua would, and the keys common.lua does not know)
--
-- KEYS[1]  C  the limit's config (see common.lua)
-- KEYS[2]  T  the tombstone: a string, the highest config version any
--             limit of this name had (see delete.lua)
-- KEYS[3]  H  the config history: a list of JSON entries, newest first,
--             at most ARGV[8] long (see docs/design.md, "Config versions")
-- ARGV[1]  name (for the event)
-- ARGV[2]  capacity (1..1e9)
-- ARGV[3]  rate as common.lua's r (1..1e12)
-- ARGV[4]  a fresh random incarnation id, used only when creating
-- ARGV[5]  who writes (a token name), for the history
-- ARGV[6]  precondition: '' none, 'absent', 'present', or ',v1,v2,' the
--          config versions the write expects (store.Precondition.Arg)
-- ARGV[7]  the config as JSON, for the history
-- ARGV[8]  how many history entries to keep
-- Reply: {-1, exists 0|1, config_version} when the precondition does not
-- hold (nothing is written), else {created 0|1, capacity, rate,
-- config_version}.
--
-- The config version is 1 above the tombstone's when the limit is created,
-- and moves by one (with a history entry) at every put that changes
-- capacity or rate.
--
-- An update keeps the incarnation and every bucket as it is: nothing is
-- refilled. From the next take on, a bucket refills at the new rate since
-- it was last written and is capped at the new capacity (a lower capacity
-- caps it). A bucket that has expired was full, and is full under the new
-- config too. One approximation remains: a bucket's expiry was set under
-- the config of its last grant, so after a lower rate or a higher capacity
-- it can expire, and count as full, before the new config alone would have
-- filled it. That gives a key at most one bucket's worth of extra tokens
-- per such change.

local C, T, H = KEYS[1], KEYS[2], KEYS[3]
local tm = redis.call('TIME')
local now = tm[1] * 1000 + math.floor(tm[2] / 1000)

local cs = redis.call('GET', C)
local cap, r, inc, cv
if cs then
  cap, r, inc, cv = string.match(cs, '^(%d+) (%d+) (%S+) ?(%d*)$')
  cv = tonumber(cv) or 1 -- a limit written before versions is at 1
end
local exists = cs ~= false and cs ~= nil

local cond = ARGV[6]
local holds = true
if cond == 'absent' then
  holds = not exists
elseif cond == 'present' then
  holds = exists
elseif cond ~= '' then
  holds = exists and string.find(cond, ',' .. string.format('%d', cv) .. ',', 1, true) ~= nil
end
if not holds then
  local e = 0
  if exists then e = 1 end
  return {-1, e, cv or 0}
end

local created = 0
local changed = false
if not exists then
  created, inc, changed = 1, ARGV[4], true
  cv = tonumber(redis.call('GET', T)) or 0
elseif cap ~= ARGV[2] or r ~= ARGV[3] then
  changed = true
end
if changed then
  cv = cv + 1
  redis.call('LPUSH', H, '{"config_version":' .. string.format('%d', cv) .. ',"at_ms":' .. string.format('%d', now) ..
    ',"by":' .. cjson.encode(ARGV[5]) .. ',"config":' .. ARGV[7] .. '}')
  redis.call('LTRIM', H, 0, tonumber(ARGV[8]) - 1)
  redis.call('PERSIST', H)
end
redis.call('SET', C, ARGV[2] .. ' ' .. ARGV[3] .. ' ' .. inc .. ' ' .. string.format('%d', cv))
redis.call('PUBLISH', CH, cjson.encode({type = 'ratelimit.config', name = ARGV[1], at_ms = now, config_version = cv}))
return {created, tonumber(ARGV[2]), tonumber(ARGV[3]), cv}
