-- common.lua: the token bucket's shared code, prepended to every rate-limit
-- script. It defines no reply of its own.
--
-- Keys (all in the limit's hash tag, so one script touches one slot):
--   C  the limit's config, a string "cap r inc cv": capacity in tokens,
--      rate (r, below), the limit's incarnation, a random id drawn each
--      time the limit is created so that a limit made again under an old
--      name never reads the old limit's buckets, and its config version
--      (see put.lua; absent in a limit written before versions).
--   B  one key's bucket, a string "l t inc": level (l, below), the store's
--      time when it was true (t, ms), and the incarnation it was written
--      under. A bucket that is absent, or of another incarnation, is full.
-- Strings rather than hashes: one GET or SET each, which is most of what a
-- take costs inside Redis.
-- CH, the pub/sub channel for events, is defined by the Go code that loads
-- the script (a channel is not a key: it must not be in KEYS on a Cluster).
--
-- Arithmetic is fixed-point, in integers that Lua's doubles hold exactly
-- (all below 2^53):
--   time    milliseconds of the store's clock (TIME), never the caller's
--   level   millionths of a token (U per token): at most 1e9 * 1e6 = 1e15
--   r       millionths of a token per millisecond, which is thousandths of
--           a token per second: 1 .. 1e12
-- A bucket's level at time now is min(cap*U, l + (now - t) * r): a sum of
-- integers, so no rounding error builds up however long a bucket lives and
-- however many takes it sees. A store clock that seems to go backwards
-- (now < t) adds nothing, and t is never moved back, so no span of the
-- clock is refilled twice. Expiry is at an absolute time (PXAT) of the same
-- clock: a bucket the clock has gone past was full, and stays full (absent)
-- if the clock then steps back.
--
-- Numbers written to the store go through string.format('%d'): Lua's own
-- number-to-string conversion keeps 14 digits.

local U = 1000000

local tm = redis.call('TIME')
local now = tm[1] * 1000 + math.floor(tm[2] / 1000)

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

-- Every script starts by reading the limit: cap, r and inc are nil when it
-- does not exist. Given KEYS[2], it reads that bucket too: l and t are its
-- level now and the time that level is true at, which is now, or the
-- bucket's own time when the clock is behind it. A capacity lowered since
-- the bucket was written caps it. (Straight-line code rather than
-- functions: this is the hot path, and calls cost.)

local cap, r, inc
local cs, bs
if KEYS[2] then
  local both = redis.call('MGET', KEYS[1], KEYS[2]) -- one call for config and bucket
  cs, bs = both[1], both[2]
else
  cs = redis.call('GET', KEYS[1])
end
if cs then
  cap, r, inc = string.match(cs, '^(%d+) (%d+) (%S+)')
  cap, r = cap + 0, r + 0
end

local capu, l, t
if cap and KEYS[2] then
  capu, l, t = cap * U, cap * U, now
  if bs then
    local bl, bt, bi = string.match(bs, '^(%d+) (%d+) (.+)$')
    if bi == inc then
      l, t = bl + 0, bt + 0
      if now > t then
        -- when (now - t) * r is too large to be exact it is far above capu
        l = l + (now - t) * r
        t = now
      end
      if l > capu then
        l = capu
      end
    end
  end
end
