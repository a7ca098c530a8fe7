-- acquire_closed.lua: the answer of a closed breaker that has nothing else
-- to do, before common.lua makes its functions (acquire only; see
-- docs/performance.md, "The acquire script"). Most acquires find their
-- breaker closed with no override and no slow start under way; their
-- answer reads five fields and needs neither the clock (unless a ramp may
-- be under way) nor a write. Any other breaker falls through to
-- common.lua and acquire.lua, which decide everything, this case
-- included: the answer here must be answer(0)'s for a closed breaker with
-- admit() at 100 (TestAcquireClosedPath compares the two).
do
  local f = redis.call('HMGET', KEYS[1], 'st', 'ov', 'cfg', 'ss', 'gen')
  if f[1] == 'closed' and f[2] == '' and f[3] then
    -- cache_ttl_ms and slow_start_ms: the 11th and 12th words of cfg
    local ttl, ss = string.match(f[3], '^%a+ %d+ %d+ %d+ %d+ %d+ %d+ %d+ %d+ %d+ (%d+) ?(%d*)')
    local ramp = false
    local c_ss = tonumber(ss) or 0
    if c_ss > 0 and f[4] then
      local at = tonumber(string.match(f[4], '^(%d+) ')) or 0
      if at > 0 then
        local t = redis.call('TIME')
        ramp = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - at < c_ss
      end
    end
    if ttl and not ramp then
      return {1, 'closed', '', 0, tonumber(ttl), tonumber(f[5]), 0, 100, -1}
    end
  end
end
