-- common.lua: the token bucket's shared code, prepended to every rate-limit
-- script. It defines no reply of its own.
--
-- Keys (all in the limit's hash tag, so one script touches one slot):
--   C  the limit's config hash: cap (tokens), r (rate, see below),
--      inc (the limit's incarnation: a fresh random id each time the limit
--      is created, so buckets of a deleted limit are never read by a new one)
--   B  one key's bucket hash: l (level), t (time of l), i (the incarnation
--      it was written under). A bucket that is absent, or from another
--      incarnation, is full.
-- CH, the pub/sub channel for events, is defined by the Go code that loads
-- the script (a channel is not a key: it must not be in KEYS on a Cluster).
--
-- Arithmetic is fixed-point, in integers that Lua's doubles hold exactly
-- (all below 2^53):
--   time    milliseconds of the store's clock (TIME), never the caller's
--   level   millionths of a token (U per token): at most 1e9 * 1e6 = 1e15
--   r       millionths of a token per millisecond, which is thousandths
--           of a token per second: 1 .. 1e12
-- A bucket's level at time now is min(cap*U, l + (now - t) * r): a sum of
-- integers, so no rounding error builds up however long a bucket lives and
-- however many takes it sees. A store clock that seems to go backwards
-- (now < t) adds nothing, and t is never moved back, so the same span is
-- never refilled twice.

local U = 1000000

local tm = redis.call('TIME')
local now = tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)

local function int(n)
  return string.format('%d', n)
end

-- idiv is floor(a / b) for integers a >= 0, b > 0. A double quotient can
-- round across an integer when a is large; the correction makes it exact.
local function idiv(a, b)
  local q = math.floor(a / b)
  if q * b > a then
    q = q - 1
  elseif (q + 1) * b <= a then
    q = q + 1
  end
  return q
end

-- cdiv is ceil(a / b) for integers a >= 0, b > 0.
local function cdiv(a, b)
  return idiv(a + b - 1, b)
end

-- config reads C: capacity, rate, incarnation; nil when the limit does not
-- exist.
local function config(C)
  local c = redis.call('HMGET', C, 'cap', 'r', 'inc')
  if not c[1] then
    return nil
  end
  return tonumber(c[1]), tonumber(c[2]), c[3]
end

-- level returns bucket B's level and the time it is taken at: now, or the
-- bucket's own time when the clock is behind it. capu is the capacity in
-- millionths. A capacity lowered since the bucket was written caps it.
local function level(B, capu, r, inc)
  local f = redis.call('HMGET', B, 'l', 't', 'i')
  if not f[1] or f[3] ~= inc then
    return capu, now
  end
  local l, t = tonumber(f[1]), tonumber(f[2])
  if now > t then
    -- when (now - t) * r is too large to be exact it is far above capu
    l = l + (now - t) * r
    t = now
  end
  if l > capu then
    l = capu
  end
  return l, t
end
