-- override.lua: force a breaker open or closed. (prepended with common.lua and window.lua)
--
-- KEYS  S, W, P (see common.lua)
-- ARGV[1]  name
-- ARGV[2]  'forced_open' | 'forced_closed'
-- ARGV[3]  reason
-- ARGV[4]  by (token name)
-- ARGV[5]  ttl_ms, 0 for no expiry
-- Reply: false when the breaker does not exist, else common.lua's view().
--
-- Counting goes on while forced, but nothing trips. A change of forced state
-- is a transition (the generation moves); renewing the same state only
-- updates reason, author and expiry.

if not load() then
  return false
end
tick()

local to, ttl = ARGV[2], tonumber(ARGV[5])
local from = effective()
set('ov_reason', ARGV[3])
set('ov_by', ARGV[4])
set('ov_at', now)
if ttl > 0 then
  set('ov_exp', now + ttl)
else
  set('ov_exp', 0)
end
if from ~= to then
  set('ov', to)
  set('st', 'closed')
  set('since', now)
  set('until', 0)
  set('ho_ok', 0)
  set('gen', b.gen + 1)
  redis.call('DEL', P)
  publish(from, to, 'override: ' .. ARGV[3])
end
return view()
