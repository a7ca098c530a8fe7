-- outcomes.lua: apply reports of what happened to calls, each report's
-- entries oldest first, the reports one after the other, and answer each
-- report with the state after it. (prepended with common.lua and
-- window.lua, and run coalesced: see each_request in
-- internal/store/coalesce.go)
--
-- KEYS  S, W, P (see common.lua), then the records of keyed reports
-- ARGV[1] name
-- then the reports (each_request); a report's own arguments are six
-- values per entry:
--   success (1|0), duration_ms, count, permit ('' for none),
--   generation (-1 when the client did not say), retries (0..count)
-- Reply: false when the breaker does not exist, else one reply per report
--   (each_request's), a report's own being the decision of common.lua's
--   answer(): its seventh element counts the calls ignored, its ninth is
--   the retry allowance (common.lua's lend(); -1 when the breaker has no
--   retry budget).
--
-- Entries are validated before this script runs. An outcome is ignored
-- (counted, not applied) when it was reported against another generation,
-- or arrives while the breaker is open or half-open without a permit: those
-- calls were let through under a state that no longer holds. A permit that
-- is unknown, expired or from another generation settles nothing.

-- Only the fields a report reads (not the override's text, the times
-- shown to operators or the transition counters), each once; a report in
-- the same second as the last adds to the tail segment in the hash and
-- writes nothing else (see common.lua).
if not load({'st', 'ov', 'ov_exp', 'until', 'gen', 'ho_ok', 'cfg', 'win', 'tail', 'ss', 'lent'}) then
  return false
end
tick()

local replies = each_request(function(first, last)
local ignored, recorded, spent = 0, 0, 0
for i = first, last, 6 do
  local ok = ARGV[i] == '1'
  local dur = tonumber(ARGV[i + 1])
  local n = tonumber(ARGV[i + 2])
  local permit = ARGV[i + 3]
  local gen = tonumber(ARGV[i + 4])
  local r = tonumber(ARGV[i + 5])
  spent = spent + r
  local slow = dur >= b.c_slow
  if permit ~= '' then
    local score = redis.call('ZSCORE', P, permit)
    if b.ov == '' and b.st == 'half_open' and score and tonumber(score) > now then
      redis.call('ZREM', P, permit)
      if not ok or slow then
        local why = 'probe failed'
        if ok then why = 'probe slow' end
        transition('open', why)
      else
        set('ho_ok', b.ho_ok + 1)
        if b.ho_ok >= b.c_hom then
          transition('closed', 'probes succeeded')
        end
      end
    else
      ignored = ignored + 1
    end
  elseif gen >= 0 and gen ~= b.gen then
    ignored = ignored + n
  elseif b.ov ~= '' or b.st == 'closed' then
    record(n, not ok, slow, r)
    recorded = recorded + n
    maybe_trip()
  else
    ignored = ignored + n
  end
end
return answer(ignored, lend(recorded, spent))
end)
flush()
return replies
