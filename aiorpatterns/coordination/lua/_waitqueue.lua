-- Shared FIFO wait queue with hand-off (inlined by "-- @include waitqueue").
-- Expects the including script to define locals QUEUE (ZSET token -> arrival time, us),
-- WAITERS (HASH token -> "<lease_ms> <deadline_ms>"), and a function grant(token, lease_ms)
-- that gives the resource to a waiter and returns the value to wake it with.
-- A waiter blocks on its wake list "<QUEUE>:<token>": it embeds QUEUE's hash tag, so it lives
-- in the same slot as every declared key (Redis Cluster allows same-slot keys in a script).

local GRACE_MS = 5000
-- Left in a token's wake list by abandon() and by a release; never a grant (grants are > 0).
local TOMBSTONE = '0'
-- How long a finished token's tombstone lives: longer than redis-py's default retry schedule
-- (10 tries, backoff capped at 1 s), so a re-sent request of that token still finds it.
local TOMBSTONE_MS = 15000

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

local function wake_key(token)
  return QUEUE .. ':' .. token
end

local function dequeue(token)
  redis.call('ZREM', QUEUE, token)
  redis.call('HDEL', WAITERS, token)
end

-- Leave the queue and drop anything pushed to the waiter meanwhile.
local function leave(token)
  dequeue(token)
  redis.call('DEL', wake_key(token))
end

-- Mark a token finished (released, or given up): a short-lived tombstone in its wake list.
-- A late or re-sent acquire of that token is refused (see abandoned()), and a release run again
-- by a client retry recognises its own earlier run (the token no longer holds, but is retired).
local function retire(token)
  local wake = wake_key(token)
  redis.call('DEL', wake)
  redis.call('RPUSH', wake, TOMBSTONE)
  redis.call('PEXPIRE', wake, TOMBSTONE_MS)
end

-- Leave the queue for good (a cancelled or failed acquire). The caller gave up with a request
-- possibly still in flight on another connection (the one that was cancelled), which Redis may
-- run after this: the tombstone makes acquire refuse it instead of granting, or queueing, a
-- token nobody listens for.
local function abandon(token)
  dequeue(token)
  retire(token)
end

-- True if this token is finished (its clean-up or its release already ran): a late request of
-- it must do nothing.
local function abandoned(token)
  return redis.call('LINDEX', wake_key(token), 0) == TOMBSTONE
end

local function keep_alive(key, ttl_ms)
  if redis.call('PTTL', key) < ttl_ms then
    redis.call('PEXPIRE', key, ttl_ms)
  end
end

-- Add (or refresh) a waiter; its place in line is kept across refreshes.
local function enqueue(token, lease_ms, wait_ms, now)
  redis.call('ZADD', QUEUE, 'NX', now_us(), token)
  redis.call('HSET', WAITERS, token, lease_ms .. ' ' .. (now + wait_ms))
  keep_alive(QUEUE, wait_ms + GRACE_MS)
  keep_alive(WAITERS, wait_ms + GRACE_MS)
end

-- Return the first waiter still alive (and its lease), dropping dead ones on the way.
local function live_head(now)
  while true do
    local head = redis.call('ZRANGE', QUEUE, 0, 0)[1]
    if not head then return nil, nil end
    local info = redis.call('HGET', WAITERS, head)
    if info then
      local lease, deadline = string.match(info, '(%d+) (%d+)')
      if tonumber(deadline) >= now then return head, tonumber(lease) end
    end
    dequeue(head)
  end
end

-- Hand the resource to the first live waiter, if any, and wake it.
local function hand_off(now)
  local head, lease = live_head(now)
  if not head then return nil end
  dequeue(head)
  local value = grant(head, lease)
  local wake = wake_key(head)
  redis.call('DEL', wake)
  redis.call('RPUSH', wake, value)
  redis.call('PEXPIRE', wake, lease + GRACE_MS)
  return head
end
