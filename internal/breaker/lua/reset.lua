-- reset.lua: close a breaker and empty its window. (prepended with common.lua and window.lua)
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
close_fresh('reset')
return view()
