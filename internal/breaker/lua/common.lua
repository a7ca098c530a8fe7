-- common.lua: the breaker state machine's shared code, prepended to every
-- breaker script. It defines no reply of its own.
--
-- KEYS[1]  S  the breaker hash: state, config and window totals
-- KEYS[2]  W  the window's older segments, oldest first (a list)
--              time window:  "sec calls failures slow"  (one per second)
--              count window: "kind n" with kind = 2*failed + slow
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
--   cfg   the config, "wt ws min frt slow srt cf open hom pto ttl"
--         (c_wt .. c_ttl below; wt is time or count)
--   win   the window's totals, "calls fails slows consec hd", where hd is
--         the second of W's oldest segment (time windows; 0 when W is
--         empty) or the number of segments in W (count windows)
--   tail  the newest segment of the window, in W's format ('' for none):
--         the one a report adds to, kept out of W so that adding to it
--         touches nothing but the hash
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
  elseif f == 'calls' or f == 'fails' or f == 'slows' or f == 'consec' or f == 'hd' then
    return 'win'
  end
  return nil
end

local function unpack_cfg(v)
  local wt, ws, mn, frt, slow, srt, cf, open, hom, pto, ttl = string.match(v,
    '^(%a+) (%d+) (%d+) (%d+) (%d+) (%d+) (%d+) (%d+) (%d+) (%d+) (%d+)$')
  b.c_wt, b.c_ws, b.c_min, b.c_frt, b.c_slow, b.c_srt = wt, tonumber(ws), tonumber(mn), tonumber(frt), tonumber(slow), tonumber(srt)
  b.c_cf, b.c_open, b.c_hom, b.c_pto, b.c_ttl = tonumber(cf), tonumber(open), tonumber(hom), tonumber(pto), tonumber(ttl)
end

-- unpack_cfg_tail reads only the config's last four fields, what an
-- acquire needs: cheaper than the whole.
local function unpack_cfg_tail(v)
  local open, hom, pto, ttl = string.match(v, '^%a+ %d+ %d+ %d+ %d+ %d+ %d+ (%d+) (%d+) (%d+) (%d+)$')
  b.c_open, b.c_hom, b.c_pto, b.c_ttl = tonumber(open), tonumber(hom), tonumber(pto), tonumber(ttl)
end

local function unpack_win(v)
  local calls, fails, slows, consec, hd = string.match(v, '^(%d+) (%d+) (%d+) (%d+) (%d+)$')
  b.calls, b.fails, b.slows, b.consec, b.hd = tonumber(calls), tonumber(fails), tonumber(slows), tonumber(consec), tonumber(hd)
end

local function pack(field)
  if field == 'cfg' then
    return b.c_wt .. ' ' .. int(b.c_ws) .. ' ' .. int(b.c_min) .. ' ' .. int(b.c_frt) .. ' ' .. int(b.c_slow) .. ' ' ..
      int(b.c_srt) .. ' ' .. int(b.c_cf) .. ' ' .. int(b.c_open) .. ' ' .. int(b.c_hom) .. ' ' .. int(b.c_pto) .. ' ' .. int(b.c_ttl)
  end
  return int(b.calls) .. ' ' .. int(b.fails) .. ' ' .. int(b.slows) .. ' ' .. int(b.consec) .. ' ' .. int(b.hd)
end

local upgrade

-- load reads the breaker into b: every field, or only those named (fewer
-- fields make a cheaper script; the first named must be 'st'; 'cfg' and
-- 'win' unpack into their fields, and 'cfg' with cfg_tail set only into
-- c_open, c_hom, c_pto and c_ttl). It returns false when the breaker does
-- not exist.
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
  for i = 1, #raw, 2 do
    local f, v = raw[i], raw[i + 1]
    if f == 'cfg' then
      unpack_cfg(v)
      has_cfg = true
    elseif f == 'win' then
      unpack_win(v)
    elseif f == 'tail' or f == 'ov_reason' or f == 'ov_by' then
      b[f] = v
    else
      b[f] = tonumber(v) or v
    end
  end
  if not has_cfg then
    return upgrade()
  end
  return true
end

local function set(f, v)
  b[f] = v
  dirty[f] = true
end

local function flush()
  local args = {}
  local cfg, win = false, false
  for f in pairs(dirty) do
    local p = packed(f)
    if p == 'cfg' then
      cfg = true
    elseif p == 'win' then
      win = true
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
  if cfg then
    args[#args + 1] = 'cfg'
    args[#args + 1] = pack('cfg')
  end
  if win then
    args[#args + 1] = 'win'
    args[#args + 1] = pack('win')
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
-- so every replica's metrics read the fleet's transition counts.
local function publish(from, to, reason)
  redis.call('HINCRBY', S, 'tr:' .. from .. ':' .. to, 1)
  redis.call('PUBLISH', CH, cjson.encode({
    type = 'breaker.state', name = NAME, from = from, to = to,
    reason = reason, at_ms = now, generation = b.gen,
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
end

-- transition moves the underlying state and bumps the generation.
local function transition(to, reason)
  local from = effective()
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
  publish(from, effective(), reason)
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

-- parse reads a window segment's numbers: four for a time window's
-- bucket, two for a count window's run; nothing for ''.
local function parse(seg)
  local a, c, d, e = string.match(seg, '^(%d+) (%d+) ?(%d*) ?(%d*)$')
  return tonumber(a), tonumber(c), tonumber(d), tonumber(e)
end

local function drop_counts(n, f, sl)
  set('calls', b.calls - n)
  set('fails', b.fails - f)
  set('slows', b.slows - sl)
end

-- evict drops what has left the window: W's oldest segments, then the
-- tail.
local function evict()
  if b.c_wt == 'time' then
    local oldest = math.floor(now / 1000) - b.c_ws -- seconds at or before this are out
    while b.hd > 0 and b.hd <= oldest do
      local seg = redis.call('LPOP', W)
      if seg then
        local _, n, f, sl = parse(seg)
        drop_counts(n, f, sl)
      end
      local head = redis.call('LINDEX', W, 0)
      if head then
        set('hd', (parse(head)))
      else
        set('hd', 0)
      end
    end
    if b.tail ~= '' then
      local sec, n, f, sl = parse(b.tail)
      if sec <= oldest then
        drop_counts(n, f, sl)
        set('tail', '')
      end
    end
  else
    while b.calls > b.c_ws do
      local head, in_w = b.tail, false
      if b.hd > 0 then
        head, in_w = redis.call('LINDEX', W, 0), true
      end
      if not head or head == '' then
        break
      end
      local kind, n = parse(head)
      local excess = b.calls - b.c_ws
      local drop = n
      if n > excess then
        drop = excess
        local rest = int(kind) .. ' ' .. int(n - drop)
        if in_w then redis.call('LSET', W, 0, rest) else set('tail', rest) end
      elseif in_w then
        redis.call('LPOP', W)
        set('hd', b.hd - 1)
      else
        set('tail', '')
      end
      local f, sl = 0, 0
      if kind >= 2 then f = drop end
      if kind % 2 == 1 then sl = drop end
      drop_counts(drop, f, sl)
    end
  end
end

-- tick applies what time alone changes: an override that expired and
-- buckets that left a time window.
local function expire_override()
  if b.ov ~= '' and b.ov_exp > 0 and now >= b.ov_exp then
    end_override('override expired')
  end
end

local function tick()
  expire_override()
  evict()
end

-- record adds n like calls to the window: to the tail segment when they
-- belong to it, else the tail moves to W and a new one starts.
local function record(n, failed, slow)
  local f, s = 0, 0
  if failed then f = n end
  if slow then s = n end
  if b.c_wt == 'time' then
    local sec = math.floor(now / 1000)
    local tsec, tn, tf, ts
    if b.tail ~= '' then
      tsec, tn, tf, ts = parse(b.tail)
    end
    if tsec and tsec >= sec then
      -- same second, or a store clock that stepped back: add to the newest bucket
      set('tail', int(tsec) .. ' ' .. int(tn + n) .. ' ' .. int(tf + f) .. ' ' .. int(ts + s))
    else
      if tsec then
        redis.call('RPUSH', W, b.tail)
        if b.hd == 0 then set('hd', tsec) end
      end
      set('tail', int(sec) .. ' ' .. int(n) .. ' ' .. int(f) .. ' ' .. int(s))
    end
  else
    local kind = 0
    if failed then kind = kind + 2 end
    if slow then kind = kind + 1 end
    local tkind, tn
    if b.tail ~= '' then
      tkind, tn = parse(b.tail)
    end
    if tkind == kind then
      set('tail', int(kind) .. ' ' .. int(tn + n))
    else
      if tkind then
        redis.call('RPUSH', W, b.tail)
        set('hd', b.hd + 1)
      end
      set('tail', int(kind) .. ' ' .. int(n))
    end
  end
  set('calls', b.calls + n)
  set('fails', b.fails + f)
  set('slows', b.slows + s)
  if failed then
    set('consec', b.consec + n)
  else
    set('consec', 0)
  end
  if b.c_wt == 'count' then
    evict()
  end
end

-- maybe_trip opens a closed, unforced breaker whose window says so.
local function maybe_trip()
  if b.ov ~= '' or b.st ~= 'closed' then
    return
  end
  if b.c_cf > 0 and b.consec >= b.c_cf then
    transition('open', 'consecutive_failures')
  elseif b.calls >= b.c_min and b.fails * 100 >= b.c_frt * b.calls then
    transition('open', 'failure_rate')
  elseif b.calls >= b.c_min and b.slows * 100 >= b.c_srt * b.calls then
    transition('open', 'slow_call_rate')
  end
end

-- decision is the reply of acquire and outcomes:
-- {allowed 0|1, state, permit, retry_after_ms, cache_ttl_ms, generation, ignored}
local function decision(allowed, permit, retry, ttl, ignored)
  local a = 0
  if allowed then a = 1 end
  return {a, effective(), permit, retry, ttl, b.gen, ignored}
end

-- answer says what a client may do now without taking a permit.
local function answer(ignored)
  local st = effective()
  if st == 'forced_open' then
    local retry = b.c_ttl
    if b.ov_exp > 0 then retry = b.ov_exp - now end
    return decision(false, '', retry, retry, ignored)
  elseif st == 'forced_closed' then
    local ttl = b.c_ttl
    if b.ov_exp > 0 and b.ov_exp - now < ttl then ttl = b.ov_exp - now end
    return decision(true, '', 0, ttl, ignored)
  elseif st == 'closed' then
    return decision(true, '', 0, b.c_ttl, ignored)
  elseif st == 'open' then
    local retry = b['until'] - now
    if retry < 0 then retry = 0 end
    return decision(false, '', retry, retry, ignored)
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
  return decision(false, '', retry, ttl, ignored)
end

-- view is the reply of the admin scripts: the store's time, then the
-- hash's fields, the packed ones unpacked (see the top of this file).
local function view()
  flush()
  local out = {now}
  local raw = redis.call('HGETALL', S)
  for i = 1, #raw, 2 do
    local f = raw[i]
    if f == 'cfg' then
      for _, c in ipairs({'c_wt', 'c_ws', 'c_min', 'c_frt', 'c_slow', 'c_srt', 'c_cf', 'c_open', 'c_hom', 'c_pto', 'c_ttl'}) do
        out[#out + 1] = c
        out[#out + 1] = b[c]
      end
    elseif f == 'win' then
      for _, c in ipairs({'calls', 'fails', 'slows', 'consec'}) do
        out[#out + 1] = c
        out[#out + 1] = int(b[c])
      end
    elseif f ~= 'tail' then
      out[#out + 1] = f
      out[#out + 1] = raw[i + 1]
    end
  end
  return out
end
