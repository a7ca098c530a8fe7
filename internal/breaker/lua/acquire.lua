-- acquire.lua: may a call go out now? (prepended with acquire_closed.lua
-- and common.lua)
--
-- KEYS  S, W, P (see common.lua)
-- ARGV[1] name
-- Reply: false when the breaker does not exist, else
--   {allowed 0|1, state, permit ('' for none), retry_after_ms, cache_ttl_ms, generation, 0,
--    admit_percent, -1}
-- The first acquire after open_duration_ms moves an open breaker to
-- half_open; in half_open at most c_hom permits are out at once, each held
-- until reported or until it expires after c_pto ms.

-- Only the fields this path reads: acquire is the hottest script. It
-- leaves the window alone; reports and views evict before they read it.
-- 'ss' is for admit_percent (common.lua's admit()).
if not load({'st', 'ov', 'ov_exp', 'until', 'gen', 'seq', 'cfg', 'ss'}, true) then
  return false
end
expire_override()

if b.ov == '' and b.st == 'open' and now >= b['until'] then
  transition('half_open', 'open_duration elapsed')
end

if b.ov == '' and b.st == 'half_open' then
  redis.call('ZREMRANGEBYSCORE', P, '-inf', now)
  if redis.call('ZCARD', P) < b.c_hom then
    set('seq', b.seq + 1)
    local permit = int(b.gen) .. '.' .. int(b.seq)
    redis.call('ZADD', P, now + b.c_pto, permit)
    -- the key lives as long as its longest-lived permit (a config change
    -- can shorten probe_timeout_ms while older permits are out)
    if redis.call('PTTL', P) < b.c_pto then
      redis.call('PEXPIRE', P, b.c_pto)
    end
    flush()
    return decision(true, permit, 0, 0, 0)
  end
end

local reply = answer(0)
flush()
return reply
