-- reset.lua: close a breaker and empty its window. (prepended with common.lua)
--
-- KEYS  S, W, P (see common.lua)
-- ARGV[1]  name
-- Reply: false when the breaker does not exist, else common.lua's view().
-- Reset ends any override too. The generation always moves, so outcomes of
-- calls made before the reset are not counted against the fresh window.

if not load() then
  return false
end
tick()
local from = effective()
set('ov', '')
set('ov_reason', '')
set('ov_by', '')
set('ov_at', 0)
set('ov_exp', 0)
set('st', 'closed')
set('since', now)
set('until', 0)
set('ho_ok', 0)
set('gen', b.gen + 1)
redis.call('DEL', P)
clear_window()
if from ~= 'closed' then
  publish(from, 'closed', 'reset')
end
return view()
