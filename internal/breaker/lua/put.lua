-- put.lua: create or update a breaker's config. (prepended with common.lua and window.lua)
--
-- KEYS  S, W, P (see common.lua)
-- KEYS[4]  T  the tombstone (see delete.lua)
-- KEYS[5]  H  the config history: a list of JSON entries, newest first,
--             at most ARGV[16] long (see docs/design.md, "Config versions")
-- ARGV[1]  name
-- ARGV[2]  window type ('time' | 'count')
-- ARGV[3..12] window size, minimum_calls, failure_rate_threshold,
--   slow_call_duration_ms, slow_call_rate_threshold, consecutive_failures,
--   open_duration_ms, half_open_max_calls, probe_timeout_ms, cache_ttl_ms
-- ARGV[13] who writes (a token name), for the history
-- ARGV[14] precondition: '' none, 'absent', 'present', or ',v1,v2,' the
--          config versions the write expects (store.Precondition.Arg)
-- ARGV[15] the config as JSON, for the history
-- ARGV[16] how many history entries to keep
-- ARGV[17..19] slow_start_ms, retry_budget_percent,
--          retry_budget_min_per_second in thousandths
-- Reply: {-1, exists 0|1, config_version} when the precondition does not
-- hold (nothing is written), else {created 0|1, view...} where view is
-- common.lua's view().
--
-- A new breaker starts closed at generation 1, or one above the highest
-- generation a deleted breaker of this name had (the tombstone), so a
-- client that knew the old breaker never takes the new one's answers for
-- stale ones. Its config version (cv) likewise starts one above the
-- tombstone's, so versions never go back across delete and re-create. An
-- update keeps the state and the window, except that a change of window
-- type empties the window and a smaller count window drops its oldest
-- calls; it moves cv by one, and adds a history entry, only when the config
-- changes.

local T, H = KEYS[4], KEYS[5]
-- The numeric config fields, each with the ARGV index of its value.
local fields = {'c_ws', 'c_min', 'c_frt', 'c_slow', 'c_srt', 'c_cf', 'c_open', 'c_hom', 'c_pto', 'c_ttl',
  'c_ss', 'c_rbp', 'c_rbm'}
local function argi(i)
  if i <= 10 then return i + 2 end
  return i + 6
end

local exists = load()
-- A breaker written before config versions has none: it is at version 1.
local cv = 0
if exists then
  cv = tonumber(b.cv) or 1
end

local cond = ARGV[14]
local holds = true
if cond == 'absent' then
  holds = not exists
elseif cond == 'present' then
  holds = exists
elseif cond ~= '' then
  holds = exists and string.find(cond, ',' .. int(cv) .. ',', 1, true) ~= nil
end
if not holds then
  local e = 0
  if exists then e = 1 end
  return {-1, e, cv}
end

local created = 0
local changed = false
if not exists then
  created = 1
  changed = true
  local last = tonumber(redis.call('HGET', T, 'gen')) or 0
  cv = tonumber(redis.call('HGET', T, 'cv')) or 0
  b = {st = 'closed', since = now, ['until'] = 0, gen = last + 1, consec = 0, calls = 0, fails = 0, slows = 0, hd = 0, tail = '',
       ho_ok = 0, seq = 0, ov = '', ov_reason = '', ov_by = '', ov_at = 0, ov_exp = 0, created = now,
       rets = 0, ss_at = 0, ss_base = 0, lent_a = 0, lent_b = 0, lent_at = 0}
  for f in pairs(b) do
    dirty[f] = true
  end
  redis.call('DEL', W, P)
end

if created == 0 then
  tick()
  if b.c_wt ~= ARGV[2] then
    changed = true
  end
  for i, f in ipairs(fields) do
    if b[f] ~= tonumber(ARGV[argi(i)]) then
      changed = true
    end
  end
end
local old_type = b.c_wt
set('c_wt', ARGV[2])
for i, f in ipairs(fields) do
  set(f, tonumber(ARGV[argi(i)]))
end
if changed then
  cv = cv + 1
  set('cv', cv)
  redis.call('LPUSH', H, '{"config_version":' .. int(cv) .. ',"at_ms":' .. int(now) ..
    ',"by":' .. cjson.encode(ARGV[13]) .. ',"config":' .. ARGV[15] .. '}')
  redis.call('LTRIM', H, 0, tonumber(ARGV[16]) - 1)
  redis.call('PERSIST', H)
elseif b.cv == nil then
  set('cv', cv)
end
if created == 0 then
  if old_type ~= b.c_wt then
    clear_window()
  end
  evict()
  maybe_trip()
end

redis.call('PUBLISH', CH, cjson.encode({type = 'breaker.config', name = NAME, at_ms = now, generation = b.gen,
  config_version = cv}))
local v = view()
table.insert(v, 1, created)
return v
