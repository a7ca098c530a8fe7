-- window.lua: the breaker's window, its trip rule, the retry budget's
-- loans and the admin view, prepended after common.lua to every breaker
-- script but acquire. Acquire never reads the window: leaving these
-- functions out of it saves each acquire their closures (about 2 µs of
-- Redis time in 13; see docs/performance.md, "The acquire script").

-- parse reads a window segment's numbers: four or five for a time
-- window's bucket (retries are 0 when left out), two for a count window's
-- run; nothing for ''.
local function parse(seg)
  local a, c, d, e, r = string.match(seg, '^(%d+) (%d+) ?(%d*) ?(%d*) ?(%d*)$')
  return tonumber(a), tonumber(c), tonumber(d), tonumber(e), tonumber(r) or 0
end

-- bucket writes a time window's segment, retries only when there are any.
local function bucket(sec, n, f, sl, r)
  local seg = int(sec) .. ' ' .. int(n) .. ' ' .. int(f) .. ' ' .. int(sl)
  if r > 0 then
    seg = seg .. ' ' .. int(r)
  end
  return seg
end

local function drop_counts(n, f, sl, r)
  set('calls', b.calls - n)
  set('fails', b.fails - f)
  set('slows', b.slows - sl)
  if r > 0 then
    set('rets', b.rets - r)
  end
end

-- evict drops what has left the window: W's oldest segments, then the
-- tail.
local function evict()
  if b.c_wt == 'time' then
    local oldest = math.floor(now / 1000) - b.c_ws -- seconds at or before this are out
    while b.hd > 0 and b.hd <= oldest do
      local seg = redis.call('LPOP', W)
      if seg then
        local _, n, f, sl, r = parse(seg)
        drop_counts(n, f, sl, r)
      end
      local head = redis.call('LINDEX', W, 0)
      if head then
        set('hd', (parse(head)))
      else
        set('hd', 0)
      end
    end
    if b.tail ~= '' then
      local sec, n, f, sl, r = parse(b.tail)
      if sec <= oldest then
        drop_counts(n, f, sl, r)
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
      local f, sl, r = 0, 0, 0
      if kind % 4 >= 2 then f = drop end
      if kind % 2 == 1 then sl = drop end
      if kind >= 4 then r = drop end
      drop_counts(drop, f, sl, r)
    end
  end
end

-- tick applies what time alone changes: an override that expired and
-- buckets that left a time window.
local function tick()
  expire_override()
  evict()
end

-- append_run adds n calls of one kind to a count window: to the tail
-- segment when it is of that kind, else the tail moves to W and a new one
-- starts.
local function append_run(kind, n)
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

-- record adds n like calls to the window, r of them retries (r <= n; in a
-- count window the n - r others come first): to the tail segment when
-- they belong to it, else the tail moves to W and a new one starts.
local function record(n, failed, slow, r)
  local f, s = 0, 0
  if failed then f = n end
  if slow then s = n end
  if b.c_wt == 'time' then
    local sec = math.floor(now / 1000)
    local tsec, tn, tf, ts, tr
    if b.tail ~= '' then
      tsec, tn, tf, ts, tr = parse(b.tail)
    end
    if tsec and tsec >= sec then
      -- same second, or a store clock that stepped back: add to the newest bucket
      set('tail', bucket(tsec, tn + n, tf + f, ts + s, tr + r))
    else
      if tsec then
        redis.call('RPUSH', W, b.tail)
        if b.hd == 0 then set('hd', tsec) end
      end
      set('tail', bucket(sec, n, f, s, r))
    end
  else
    local kind = 0
    if failed then kind = kind + 2 end
    if slow then kind = kind + 1 end
    if n > r then
      append_run(kind, n - r)
    end
    if r > 0 then
      append_run(kind + 4, r)
    end
  end
  set('calls', b.calls + n)
  set('fails', b.fails + f)
  set('slows', b.slows + s)
  if r > 0 then
    set('rets', b.rets + r)
  end
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

-- lend settles the retries a report spent against the loans made before
-- and lends the reporter, which had recorded calls applied, its share of
-- what is left of the retry budget: the retry_allowance of the answer, -1
-- when the breaker has no budget. The window's retries may be at most
-- c_rbp percent of its calls plus c_rbm thousandths of a retry per second
-- times the window's seconds (10 for a count window). The share is in
-- proportion to the calls reported, at least one while any is left; a
-- loan counts against the budget in lent_a (lent since lent_at) or lent_b
-- (the c_ttl ms before) until spent retries are reported, and is forgotten
-- after one to two c_ttl, when the client has dropped it too. Needs
-- 'lent' loaded. See docs/semantics.md ("The fleet's retry budget").
local function lend(recorded, spent)
  if b.c_rbp <= 0 and b.c_rbm <= 0 then
    return -1
  end
  if now - b.lent_at >= 2 * b.c_ttl or now < b.lent_at then
    set('lent_a', 0)
    set('lent_b', 0)
    set('lent_at', now)
  elseif now - b.lent_at >= b.c_ttl then
    set('lent_b', b.lent_a)
    set('lent_a', 0)
    set('lent_at', now)
  end
  if spent > 0 then
    local settle = math.min(spent, b.lent_b)
    set('lent_b', b.lent_b - settle)
    set('lent_a', math.max(b.lent_a - (spent - settle), 0))
  end
  local secs = 10
  if b.c_wt == 'time' then secs = b.c_ws end
  local budget = math.floor((b.c_rbp * b.calls * 10 + b.c_rbm * secs) / 1000)
  local left = budget - b.rets - b.lent_a - b.lent_b
  if left <= 0 or recorded == 0 then
    return 0
  end
  local calls = b.calls
  if calls < recorded then calls = recorded end
  local share = math.ceil(budget * recorded / calls)
  if share > left then share = left end
  set('lent_a', b.lent_a + share)
  return share
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
      for _, c in ipairs({'c_wt', 'c_ws', 'c_min', 'c_frt', 'c_slow', 'c_srt', 'c_cf', 'c_open', 'c_hom', 'c_pto', 'c_ttl',
          'c_ss', 'c_rbp', 'c_rbm'}) do
        out[#out + 1] = c
        out[#out + 1] = b[c]
      end
    elseif f == 'win' then
      for _, c in ipairs({'calls', 'fails', 'slows', 'consec', 'rets'}) do
        out[#out + 1] = c
        out[#out + 1] = int(b[c])
      end
    elseif f == 'ss' then
      out[#out + 1] = 'admit'
      out[#out + 1] = admit()
      out[#out + 1] = 'ss_at'
      out[#out + 1] = int(b.ss_at)
    elseif f ~= 'tail' and f ~= 'lent' then
      out[#out + 1] = f
      out[#out + 1] = raw[i + 1]
    end
  end
  return out
end
