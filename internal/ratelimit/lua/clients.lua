-- clients.lua: note which clients take from a limit, and count them.
-- (stands alone: common.lua reads KEYS[1] as a config)
--
-- KEYS[1]  the limit's clients (sorted set: member client id, score the
--          last time it was seen, ms); it shares the limit's hash tag and
--          expires when no client is seen for two windows
-- ARGV[1]  window, ms: a client not seen for this long no longer counts
-- ARGV[2..] client ids seen since the last call
-- Reply: how many clients were seen within the window.

local tm = redis.call('TIME')
local now = tm[1] * 1000 + math.floor(tm[2] / 1000)
local window = tonumber(ARGV[1])
for i = 2, #ARGV do
  redis.call('ZADD', KEYS[1], now, ARGV[i])
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
redis.call('PEXPIRE', KEYS[1], 2 * window)
return redis.call('ZCARD', KEYS[1])
