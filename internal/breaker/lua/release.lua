-- release.lua: end an operator override. (prepended with common.lua and window.lua)
--
-- KEYS  S, W, P (see common.lua)
-- ARGV[1]  name
-- Reply: false when the breaker does not exist, else common.lua's view().
-- The breaker is closed with an empty window; without an override this
-- changes nothing.

if not load() then
  return false
end
tick()
if b.ov ~= '' then
  end_override('override removed')
end
return view()
