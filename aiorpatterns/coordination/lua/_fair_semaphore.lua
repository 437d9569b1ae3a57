-- Shared by the fair semaphore's scripts (inlined by "-- @include fair_semaphore"): the keys,
-- grant() (the book's counter + owner ZSET, atomically) and reclaim() of expired holders.
-- Expects KEYS as listed in fair_semaphore_acquire.lua; sets the local `now` for the includer.
local TIMEOUTS, OWNERS, COUNTER, QUEUE, WAITERS = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local now
-- Declared before the wait queue is inlined: its hand_off() calls grant().
local grant

-- @include waitqueue

grant = function(token, lease_ms)
  local n = redis.call('INCR', COUNTER)
  -- A counter that went missing (deleted, or an old copy restored) must still rank the new
  -- owner after every current one, or it would outrank them: the book's "steal".
  local last = redis.call('ZRANGE', OWNERS, -1, -1, 'WITHSCORES')[2]
  if last and n <= tonumber(last) then
    n = tonumber(last) + 1
    redis.call('SET', COUNTER, string.format('%d', n))
  end
  redis.call('ZADD', OWNERS, n, token)
  redis.call('ZADD', TIMEOUTS, now + lease_ms, token)
  keep_alive(OWNERS, lease_ms)
  keep_alive(TIMEOUTS, lease_ms)
  return n
end

-- Drop owners whose lease ended. The book intersects the two ZSETs (ZINTERSTORE) for this;
-- removing the few expired tokens by name costs less and keeps the owners key's expiry.
local function reclaim()
  local dead = redis.call('ZRANGEBYSCORE', TIMEOUTS, '-inf', now)
  for i = 1, #dead, 1000 do
    redis.call('ZREM', OWNERS, unpack(dead, i, math.min(i + 999, #dead)))
  end
  redis.call('ZREMRANGEBYSCORE', TIMEOUTS, '-inf', now)
end
