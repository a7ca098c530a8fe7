-- put.lua: create or update a breaker's config. (prepended with common.lua)
--
-- KEYS  S, W, P (see common.lua)
-- KEYS[4]  T  the tombstone (see delete.lua)
-- ARGV[1]  name
-- ARGV[2]  window type ('time' | 'count')
-- ARGV[3..12] window size, minimum_calls, failure_rate_threshold,
--   slow_call_duration_ms, slow_call_rate_threshold, consecutive_failures,
--   open_duration_ms, half_open_max_calls, probe_timeout_ms, cache_ttl_ms
-- Reply: {created 0|1, view...} where view is common.lua's view().
--
-- A new breaker starts closed at generation 1, or one above the highest
-- generation a deleted breaker of this name had (the tombstone), so a
-- client that knew the old breaker never takes the new one's answers for
-- stale ones. An update keeps the state and
-- the window, except that a change of window type empties the window and a
-- smaller count window drops its oldest calls.

local fields = {'c_ws', 'c_min', 'c_frt', 'c_slow', 'c_srt', 'c_cf', 'c_open', 'c_hom', 'c_pto', 'c_ttl'}
local created = 0
if not load() then
  created = 1
  local last = tonumber(redis.call('HGET', KEYS[4], 'gen')) or 0
  b = {st = 'closed', since = now, ['until'] = 0, gen = last + 1, consec = 0, calls = 0, fails = 0, slows = 0,
       ho_ok = 0, seq = 0, ov = '', ov_reason = '', ov_by = '', ov_at = 0, ov_exp = 0, created = now}
  for f in pairs(b) do
    dirty[f] = true
  end
  redis.call('DEL', W, P)
end

if created == 0 then
  tick()
end
local old_type = b.c_wt
set('c_wt', ARGV[2])
for i, f in ipairs(fields) do
  set(f, tonumber(ARGV[i + 2]))
end
if created == 0 then
  if old_type ~= b.c_wt then
    clear_window()
  end
  evict()
  maybe_trip()
end

redis.call('PUBLISH', CH, cjson.encode({type = 'breaker.config', name = NAME, at_ms = now, generation = b.gen}))
local v = view()
table.insert(v, 1, created)
return v
