-- common.lua: the breaker state machine's shared code, prepended to every
-- breaker script. It defines no reply of its own.
--
-- KEYS[1]  S  the breaker hash: config (c_*), state and window totals
-- KEYS[2]  W  the window: a list of segments, oldest first
--              time window:  "sec calls failures slow"  (one per second)
--              count window: "kind n" with kind = 2*failed + slow
-- KEYS[3]  P  outstanding half-open probe permits: member permit, score expiry ms
-- ARGV[1]  the breaker's name (for events)
-- CH, the pub/sub channel for events, is defined by the Go code that loads
-- the script (a channel is not a key: it must not be in KEYS on a Cluster).
--
-- Time is read from the store's clock only.

local S, W, P = KEYS[1], KEYS[2], KEYS[3]
local NAME = ARGV[1]

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local function int(n)
  return string.format('%d', n)
end

local b = {}
local dirty = {}

-- load reads the breaker into b: every field, or only those named (fewer
-- fields make a cheaper script; the first named must be 'st'). It returns
-- false when the breaker does not exist.
local function load(fields)
  if fields then
    local raw = redis.call('HMGET', S, unpack(fields))
    if not raw[1] then
      return false
    end
    for i = 1, #fields do
      local v = raw[i]
      b[fields[i]] = tonumber(v) or v
    end
    return true
  end
  local raw = redis.call('HGETALL', S)
  if #raw == 0 then
    return false
  end
  for i = 1, #raw, 2 do
    local v = raw[i + 1]
    local n = tonumber(v)
    if n ~= nil and raw[i] ~= 'ov_reason' and raw[i] ~= 'ov_by' then
      b[raw[i]] = n
    else
      b[raw[i]] = v
    end
  end
  return true
end

local function set(f, v)
  b[f] = v
  dirty[f] = true
end

local function flush()
  local args = {}
  for f in pairs(dirty) do
    args[#args + 1] = f
    local v = b[f]
    if type(v) == 'number' then
      args[#args + 1] = int(v)
    else
      args[#args + 1] = v
    end
  end
  if #args > 0 then
    redis.call('HSET', S, unpack(args))
  end
  dirty = {}
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
-- bucket, two for a count window's run.
local function parse(seg)
  local a, c, d, e = string.match(seg, '^(%d+) (%d+) ?(%d*) ?(%d*)$')
  return tonumber(a), tonumber(c), tonumber(d), tonumber(e)
end

-- evict drops what has left the window.
local function evict()
  if b.c_wt == 'time' then
    local oldest = math.floor(now / 1000) - b.c_ws -- seconds at or before this are out
    while b.calls > 0 do
      local head = redis.call('LINDEX', W, 0)
      if not head then
        break
      end
      local sec, n, f, sl = parse(head)
      if sec > oldest then
        break
      end
      redis.call('LPOP', W)
      set('calls', b.calls - n)
      set('fails', b.fails - f)
      set('slows', b.slows - sl)
    end
  else
    while b.calls > b.c_ws do
      local head = redis.call('LINDEX', W, 0)
      if not head then
        break
      end
      local kind, n = parse(head)
      local excess = b.calls - b.c_ws
      local drop = n
      if n > excess then
        drop = excess
        redis.call('LSET', W, 0, int(kind) .. ' ' .. int(n - drop))
      else
        redis.call('LPOP', W)
      end
      set('calls', b.calls - drop)
      if kind >= 2 then
        set('fails', b.fails - drop)
      end
      if kind % 2 == 1 then
        set('slows', b.slows - drop)
      end
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

-- record adds n like calls to the window.
local function record(n, failed, slow)
  local f, s = 0, 0
  if failed then f = n end
  if slow then s = n end
  if b.c_wt == 'time' then
    local sec = math.floor(now / 1000)
    local tail = redis.call('LINDEX', W, -1)
    local tsec, tn, tf, ts
    if tail then
      tsec, tn, tf, ts = parse(tail)
    end
    if tsec and tsec >= sec then
      -- same second, or a store clock that stepped back: add to the newest bucket
      redis.call('LSET', W, -1, int(tsec) .. ' ' .. int(tn + n) .. ' ' .. int(tf + f) .. ' ' .. int(ts + s))
    else
      redis.call('RPUSH', W, int(sec) .. ' ' .. int(n) .. ' ' .. int(f) .. ' ' .. int(s))
    end
  else
    local kind = 0
    if failed then kind = kind + 2 end
    if slow then kind = kind + 1 end
    local tail = redis.call('LINDEX', W, -1)
    local tkind, tn
    if tail then
      tkind, tn = parse(tail)
    end
    if tkind == kind then
      redis.call('LSET', W, -1, int(kind) .. ' ' .. int(tn + n))
    else
      redis.call('RPUSH', W, int(kind) .. ' ' .. int(n))
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

-- view is the reply of the admin scripts: the store's time, then the hash.
local function view()
  flush()
  local out = {now}
  local raw = redis.call('HGETALL', S)
  for i = 1, #raw do
    out[#out + 1] = raw[i]
  end
  return out
end
