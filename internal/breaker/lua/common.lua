-- common.lua: the breaker state machine's shared code, prepended to every
-- breaker script (window.lua follows it in all but acquire). It defines
-- no reply of its own.
--
-- KEYS[1]  S  the breaker hash: state, config and window totals
-- KEYS[2]  W  the window's older segments, oldest first (a list)
--              time window:  "sec calls failures slow [retries]"  (one per
--                            second; retries left out when 0)
--              count window: "kind n" with kind = 4*retry + 2*failed + slow
-- KEYS[3]  P  outstanding half-open probe permits: member permit, score expiry ms
-- ARGV[1]  the breaker's name (for events)
-- CH, the pub/sub channel for events, is defined by the Go code that loads
-- the script (a channel is not a key: it must not be in KEYS on a Cluster).
--
-- Time is read from the store's clock only.
--
-- The hash keeps what a report reads in three packed fields, so that a
-- report reads the hash once and writes one or two fields back (see
-- docs/performance.md, "The outcomes script"):
--   cfg   the config, "wt ws min frt slow srt cf open hom pto ttl [ss rbp rbm]"
--         (c_wt .. c_rbm below; wt is time or count; rbm in thousandths;
--         the last three left out while all are 0)
--   win   the window's totals, "calls fails slows consec hd [rets]", where
--         hd is the second of W's oldest segment (time windows; 0 when W
--         is empty) or the number of segments in W (count windows), and
--         rets the retries among the calls (left out while 0)
--   tail  the newest segment of the window, in W's format ('' for none):
--         the one a report adds to, kept out of W so that adding to it
--         touches nothing but the hash
-- Two more packed fields are read only by the scripts that need them:
--   ss    the slow start, "at base": when half-open last closed the
--         breaker (0: no ramp runs) and the calls the window held at the
--         last trip from closed; acquire reads it for admit_percent
--   lent  the retry budget's loans, "a b at": retries lent since at, and
--         in the c_ttl ms before it; only reports read it
-- A breaker written before slow start and the retry budget has a cfg of
-- eleven words, a win of five numbers, no ss and no lent: each missing number
-- reads as 0 (slow start and retry budget off, no retries, no loans).
-- While those are 0 this version writes cfg and win in that layout too
-- (see pack), so the version before can still read what it writes.
-- The other fields are st, since, until, gen, seq, ho_ok, the override's
-- ov, ov_reason, ov_by, ov_at, ov_exp, created, and the transition
-- counters tr:FROM:TO.

local S, W, P = KEYS[1], KEYS[2], KEYS[3]
local NAME = ARGV[1]

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local function int(n)
  return string.format('%d', n)
end

local b = {}
local dirty = {}

-- packed says which packed field, if any, holds field f.
local function packed(f)
  if string.sub(f, 1, 2) == 'c_' then
    return 'cfg'
  elseif f == 'calls' or f == 'fails' or f == 'slows' or f == 'consec' or f == 'hd' or f == 'rets' then
    return 'win'
  elseif f == 'ss_at' or f == 'ss_base' then
    return 'ss'
  elseif f == 'lent_a' or f == 'lent_b' or f == 'lent_at' then
    return 'lent'
  end
  return nil
end

local function unpack_cfg(v)
  local wt, ws, mn, frt, slow, srt, cf, open, hom, pto, ttl, ss, rbp, rbm = string.match(v,
    '^(%a+) (%d+) (%d+) (%d+) (%d+) (%d+) (%d+) (%d+) (%d+) (%d+) (%d+) ?(%d*) ?(%d*) ?(%d*)$')
  b.c_wt, b.c_ws, b.c_min, b.c_frt, b.c_slow, b.c_srt = wt, tonumber(ws), tonumber(mn), tonumber(frt), tonumber(slow), tonumber(srt)
  b.c_cf, b.c_open, b.c_hom, b.c_pto, b.c_ttl = tonumber(cf), tonumber(open), tonumber(hom), tonumber(pto), tonumber(ttl)
  b.c_ss, b.c_rbp, b.c_rbm = tonumber(ss) or 0, tonumber(rbp) or 0, tonumber(rbm) or 0
end

-- unpack_cfg_tail reads only what an acquire needs, the config's fields
-- from open_duration_ms to slow_start_ms: cheaper than the whole.
local function unpack_cfg_tail(v)
  local open, hom, pto, ttl, ss = string.match(v, '^%a+ %d+ %d+ %d+ %d+ %d+ %d+ (%d+) (%d+) (%d+) (%d+) ?(%d*)')
  b.c_open, b.c_hom, b.c_pto, b.c_ttl, b.c_ss = tonumber(open), tonumber(hom), tonumber(pto), tonumber(ttl), tonumber(ss) or 0
end

local function unpack_win(v)
  local calls, fails, slows, consec, hd, rets = string.match(v, '^(%d+) (%d+) (%d+) (%d+) (%d+) ?(%d*)$')
  b.calls, b.fails, b.slows, b.consec, b.hd = tonumber(calls), tonumber(fails), tonumber(slows), tonumber(consec), tonumber(hd)
  b.rets = tonumber(rets) or 0
end

-- unpack_ss and unpack_lent read the slow start's and the loans' fields;
-- a missing field (false from HMGET, nil from HGETALL) reads as zeros.
local function unpack_ss(v)
  local at, base
  if v then
    at, base = string.match(v, '^(%d+) (%d+)$')
  end
  b.ss_at, b.ss_base = tonumber(at) or 0, tonumber(base) or 0
end

local function unpack_lent(v)
  local a, bb, at
  if v then
    a, bb, at = string.match(v, '^(%d+) (%d+) (%d+)$')
  end
  b.lent_a, b.lent_b, b.lent_at = tonumber(a) or 0, tonumber(bb) or 0, tonumber(at) or 0
end

-- pack writes a packed field. cfg and win leave their newest numbers out
-- while those are 0, so that a breaker that uses neither slow start nor
-- the retry budget keeps the layout of the version before them, which
-- that version's scripts can still read (a rolling upgrade).
local function pack(field)
  if field == 'cfg' then
    local v = b.c_wt .. ' ' .. int(b.c_ws) .. ' ' .. int(b.c_min) .. ' ' .. int(b.c_frt) .. ' ' .. int(b.c_slow) .. ' ' ..
      int(b.c_srt) .. ' ' .. int(b.c_cf) .. ' ' .. int(b.c_open) .. ' ' .. int(b.c_hom) .. ' ' .. int(b.c_pto) .. ' ' ..
      int(b.c_ttl)
    if b.c_ss ~= 0 or b.c_rbp ~= 0 or b.c_rbm ~= 0 then
      v = v .. ' ' .. int(b.c_ss) .. ' ' .. int(b.c_rbp) .. ' ' .. int(b.c_rbm)
    end
    return v
  elseif field == 'ss' then
    return int(b.ss_at) .. ' ' .. int(b.ss_base)
  elseif field == 'lent' then
    return int(b.lent_a) .. ' ' .. int(b.lent_b) .. ' ' .. int(b.lent_at)
  end
  local v = int(b.calls) .. ' ' .. int(b.fails) .. ' ' .. int(b.slows) .. ' ' .. int(b.consec) .. ' ' .. int(b.hd)
  if b.rets ~= 0 then
    v = v .. ' ' .. int(b.rets)
  end
  return v
end

local upgrade

-- load reads the breaker into b: every field, or only those named (fewer
-- fields make a cheaper script; the first named must be 'st'; 'cfg',
-- 'win', 'ss' and 'lent' unpack into their fields, and 'cfg' with
-- cfg_tail set only into c_open, c_hom, c_pto, c_ttl and c_ss). It
-- returns false when the breaker does not exist.
local function load(fields, cfg_tail)
  if fields then
    local raw = redis.call('HMGET', S, unpack(fields))
    if not raw[1] then
      return false
    end
    for i = 1, #fields do
      local f, v = fields[i], raw[i]
      if f == 'cfg' then
        if not v then
          return upgrade()
        end
        if cfg_tail then
          unpack_cfg_tail(v)
        else
          unpack_cfg(v)
        end
      elseif f == 'win' then
        unpack_win(v)
      elseif f == 'ss' then
        unpack_ss(v)
      elseif f == 'lent' then
        unpack_lent(v)
      elseif f == 'tail' or f == 'st' or f == 'ov' then
        b[f] = v
      else
        b[f] = tonumber(v)
      end
    end
    return true
  end
  local raw = redis.call('HGETALL', S)
  if #raw == 0 then
    return false
  end
  local has_cfg = false
  local ss, lent
  for i = 1, #raw, 2 do
    local f, v = raw[i], raw[i + 1]
    if f == 'cfg' then
      unpack_cfg(v)
      has_cfg = true
    elseif f == 'win' then
      unpack_win(v)
    elseif f == 'ss' then
      ss = v
    elseif f == 'lent' then
      lent = v
    elseif f == 'tail' or f == 'ov_reason' or f == 'ov_by' then
      b[f] = v
    else
      b[f] = tonumber(v) or v
    end
  end
  if not has_cfg then
    return upgrade()
  end
  unpack_ss(ss)
  unpack_lent(lent)
  return true
end

local function set(f, v)
  b[f] = v
  dirty[f] = true
end

local function flush()
  local args = {}
  local pk = {}
  for f in pairs(dirty) do
    local p = packed(f)
    if p then
      pk[p] = true
    else
      args[#args + 1] = f
      local v = b[f]
      if type(v) == 'number' then
        args[#args + 1] = int(v)
      else
        args[#args + 1] = v
      end
    end
  end
  for p in pairs(pk) do
    args[#args + 1] = p
    args[#args + 1] = pack(p)
  end
  if #args > 0 then
    redis.call('HSET', S, unpack(args))
  end
  dirty = {}
end

-- upgrade rewrites a breaker stored by a version that kept every config
-- and window field apart (c_wt .. c_ttl, calls, fails, slows, consec, and
-- every segment in W) into the packed fields, then loads it whole.
upgrade = function()
  local raw = redis.call('HGETALL', S)
  local old = {}
  for i = 1, #raw, 2 do
    old[raw[i]] = raw[i + 1]
  end
  if not old.c_wt then
    return false -- not a breaker this code knows
  end
  local tail = redis.call('RPOP', W) or ''
  local hd = redis.call('LLEN', W)
  if old.c_wt == 'time' then
    hd = 0
    local head = redis.call('LINDEX', W, 0)
    if head then
      hd = tonumber(string.match(head, '^(%d+)'))
    end
  end
  redis.call('HSET', S,
    'cfg', old.c_wt .. ' ' .. old.c_ws .. ' ' .. old.c_min .. ' ' .. old.c_frt .. ' ' .. old.c_slow .. ' ' ..
      old.c_srt .. ' ' .. old.c_cf .. ' ' .. old.c_open .. ' ' .. old.c_hom .. ' ' .. old.c_pto .. ' ' .. old.c_ttl,
    'win', old.calls .. ' ' .. old.fails .. ' ' .. old.slows .. ' ' .. old.consec .. ' ' .. int(hd),
    'tail', tail)
  redis.call('HDEL', S, 'c_wt', 'c_ws', 'c_min', 'c_frt', 'c_slow', 'c_srt', 'c_cf', 'c_open', 'c_hom', 'c_pto', 'c_ttl',
    'calls', 'fails', 'slows', 'consec')
  b = {}
  return load()
end

local function effective()
  if b.ov ~= '' then
    return b.ov
  end
  return b.st
end

-- publish announces a state change and counts it in the hash (tr:from:to),
-- so every replica's metrics read the fleet's transition counts. A close
-- that starts a slow start says how long the ramp lasts.
local function publish(from, to, reason, slow_start_ms)
  redis.call('HINCRBY', S, 'tr:' .. from .. ':' .. to, 1)
  redis.call('PUBLISH', CH, cjson.encode({
    type = 'breaker.state', name = NAME, from = from, to = to,
    reason = reason, at_ms = now, generation = b.gen, slow_start_ms = slow_start_ms,
  }))
end

local function clear_window()
  redis.call('DEL', W)
  set('tail', '')
  set('hd', 0)
  set('calls', 0)
  set('fails', 0)
  set('slows', 0)
  set('consec', 0)
  set('rets', 0)
end

-- transition moves the underlying state and bumps the generation. A
-- trip from closed remembers how many calls the window held (ss_base, the
-- fleet's traffic that a slow start ramps back to); half-open closing
-- starts the slow start (ss_at), any other transition ends it. See
-- docs/semantics.md ("Slow start").
local function transition(to, reason)
  local from = effective()
  if to == 'open' and from == 'closed' then
    set('ss_base', b.calls)
  end
  local ramp
  if to == 'closed' and from == 'half_open' then
    set('ss_at', now)
    if b.c_ss > 0 then ramp = b.c_ss end
  elseif b.ss_at ~= 0 then
    set('ss_at', 0)
  end
  set('st', to)
  set('since', now)
  set('gen', b.gen + 1)
  redis.call('DEL', P)
  set('ho_ok', 0)
  if to == 'open' then
    set('until', now + b.c_open)
    clear_window()
  else
    set('until', 0)
    if to == 'closed' then
      clear_window()
    end
  end
  publish(from, effective(), reason, ramp)
end

-- close_fresh ends any override and closes the breaker with an empty
-- window and no probes out, at a new generation. It publishes the change
-- when the effective state was not closed already.
local function close_fresh(reason)
  local from = effective()
  set('ov', '')
  set('ov_reason', '')
  set('ov_by', '')
  set('ov_at', 0)
  set('ov_exp', 0)
  set('st', 'closed')
  set('since', now)
  set('until', 0)
  set('gen', b.gen + 1)
  set('ho_ok', 0)
  if b.ss_at ~= 0 then
    set('ss_at', 0)
  end
  redis.call('DEL', P)
  clear_window()
  if from ~= 'closed' then
    publish(from, 'closed', reason)
  end
end

-- end_override returns a forced breaker to closed with an empty window.
local function end_override(reason)
  close_fresh(reason)
end

-- expire_override ends an override whose time is up.
local function expire_override()
  if b.ov ~= '' and b.ov_exp > 0 and now >= b.ov_exp then
    end_override('override expired')
  end
end

-- admit is the percent of calls a client lets through now: 100, but for
-- c_ss ms after half-open closed the breaker, a ramp from the share
-- c_hom was of the calls the window held at the trip (at least 1%) up to
-- 100. See docs/semantics.md ("Slow start").
local function admit()
  if b.c_ss <= 0 or b.ss_at <= 0 or effective() ~= 'closed' then
    return 100
  end
  local e = now - b.ss_at
  if e >= b.c_ss then
    return 100
  end
  if e < 0 then e = 0 end
  local base = b.ss_base
  if base < 1 then base = 1 end
  local start = math.ceil(100 * b.c_hom / base)
  if start < 1 then start = 1 end
  if start > 100 then start = 100 end
  return start + math.floor((100 - start) * e / b.c_ss)
end

-- decision is the reply of acquire and outcomes:
-- {allowed 0|1, state, permit, retry_after_ms, cache_ttl_ms, generation, ignored,
--  admit_percent, retry_allowance (-1: no retry budget, or not a report)}
local function decision(allowed, permit, retry, ttl, ignored, allowance)
  local a = 0
  if allowed then a = 1 end
  return {a, effective(), permit, retry, ttl, b.gen, ignored, admit(), allowance or -1}
end

-- answer says what a client may do now without taking a permit.
local function answer(ignored, allowance)
  local st = effective()
  if st == 'forced_open' then
    local retry = b.c_ttl
    if b.ov_exp > 0 then retry = b.ov_exp - now end
    return decision(false, '', retry, retry, ignored, allowance)
  elseif st == 'forced_closed' then
    local ttl = b.c_ttl
    if b.ov_exp > 0 and b.ov_exp - now < ttl then ttl = b.ov_exp - now end
    return decision(true, '', 0, ttl, ignored, allowance)
  elseif st == 'closed' then
    return decision(true, '', 0, b.c_ttl, ignored, allowance)
  elseif st == 'open' then
    local retry = b['until'] - now
    if retry < 0 then retry = 0 end
    return decision(false, '', retry, retry, ignored, allowance)
  end
  -- half_open: a call needs a permit; say when one may free up
  redis.call('ZREMRANGEBYSCORE', P, '-inf', now)
  local retry = b.c_ttl
  local first = redis.call('ZRANGE', P, 0, 0, 'WITHSCORES')
  if #first == 2 then
    retry = tonumber(first[2]) - now
    if retry < 0 then retry = 0 end
  end
  local ttl = retry
  if ttl > b.c_ttl then ttl = b.c_ttl end
  return decision(false, '', retry, ttl, ignored, allowance)
end
