-- Shared by the read-write lock's acquire and release (inlined by "-- @include rwlock"): the
-- keys, the kind of a token, grant() for both kinds, and pump(), which grants the queue's head
-- while the lock admits it. Expects KEYS as listed in rwlock_acquire.lua; the includer sets the
-- local `now` (server time, ms) before calling anything here.
-- One FIFO queue holds readers and writers alike (the shared wait queue, _waitqueue.lua), so a
-- reader that arrives after a waiting writer waits behind it: writers are never starved.
local WRITER, READERS, FENCE, QUEUE, WAITERS = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local now
-- Declared before the wait queue is inlined: its hand_off() calls grant().
local grant

-- @include waitqueue

-- A token's kind is its prefix, chosen by the caller's lease object: "w-" writes, "r-" reads.
local function writes(token)
  return string.sub(token, 1, 2) == 'w-'
end

local function well_formed(token)
  local kind = string.sub(token, 1, 2)
  return kind == 'w-' or kind == 'r-'
end

-- The fence counter's value: the fence of the last write granted (0 before the first).
local function last_fence()
  return tonumber(redis.call('GET', FENCE) or '0')
end

-- What a holder is answered (always > 0: a grant): a writer its fence; a reader 1 + the fence of
-- the last write granted before it (no write can be granted while it holds, so it stays true).
local function answer(token)
  if writes(token) then return last_fence() end
  return last_fence() + 1
end

grant = function(token, lease_ms)
  if writes(token) then
    redis.call('SET', WRITER, token, 'PX', lease_ms)
    return redis.call('INCR', FENCE)
  end
  redis.call('ZADD', READERS, now + lease_ms, token)
  keep_alive(READERS, lease_ms)
  return last_fence() + 1
end

-- Drop readers whose lease ended, on the server's clock (the writer's lease is its PX expiry).
local function prune()
  redis.call('ZREMRANGEBYSCORE', READERS, '-inf', now)
end

-- True if `token` holds the lock now (call prune() first).
local function holds(token)
  if writes(token) then return redis.call('GET', WRITER) == token end
  return redis.call('ZSCORE', READERS, token) ~= false
end

-- True if `token` could hold the lock beside its current holders: a reader while no writer
-- holds, a writer while nobody does.
local function admits(token)
  if redis.call('EXISTS', WRITER) == 1 then return false end
  return not writes(token) or redis.call('ZCARD', READERS) == 0
end

-- Grant the queue's head, and again, while the lock admits it: a writer when the lock is free;
-- a reader, then every reader behind it up to the first writer, at once (a batch). Run after
-- anything that may have freed the lock or changed the head (a release, an expired lease, a
-- waiter leaving); a second run grants nothing more, so the scripts stay safe to run twice.
local function pump()
  while true do
    local head = live_head(now)
    if not head or not admits(head) then return end
    hand_off(now)
  end
end
