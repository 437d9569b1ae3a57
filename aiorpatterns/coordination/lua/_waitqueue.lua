-- Shared FIFO wait queue with hand-off (inlined by "-- @include waitqueue").
-- Expects the including script to define locals QUEUE (ZSET token -> arrival time, us),
-- WAITERS (HASH token -> "<lease_ms> <deadline_ms>"), and a function grant(token, lease_ms)
-- that gives the resource to a waiter and returns the value to wake it with.
-- Waking (see aiorpatterns/core/wakeup.py): a token reads "<channel>.<random>", the channel
-- being its client's; a grant is pushed as "<token> <grant>" onto that channel's list
-- "<QUEUE>:wake:<channel>", where one dispatcher per client and queue blocks for all its
-- waiting tasks. A script that collects local grants (see collect_local_grants) returns the
-- grants to waiters of its caller's own channel in its reply instead, so the caller wakes them
-- without a second round trip. "<QUEUE>:<token>" holds only a finished token's tombstone.
-- Both embed QUEUE's hash tag, so they live in the same slot as every declared key (Redis
-- Cluster allows same-slot keys in a script).

local GRACE_MS = 5000
-- Left in a token's wake list by abandon() and by a release; never a grant (grants are > 0).
local TOMBSTONE = '0'
-- How long a finished token's tombstone lives: longer than redis-py's default retry schedule
-- (10 tries, backoff capped at 1 s), so a re-sent request of that token still finds it.
local TOMBSTONE_MS = 15000

-- @include clock

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

-- The channel a token was issued on (nil for a token without one).
local function channel_of(token)
  return string.match(token, '(%x+)%.%x+$')
end

-- Grants to waiters of the caller's channel, returned in the reply (nil: push every grant).
local LOCAL_GRANTS = nil
local CALLER_CHANNEL = nil

-- Return grants to waiters of `token`'s own channel in the reply (see with_local_grants).
local function collect_local_grants(token)
  CALLER_CHANNEL = channel_of(token)
  LOCAL_GRANTS = {}
end

-- The reply `status`, followed by the local grants as token, grant pairs if there are any.
local function with_local_grants(status)
  if not LOCAL_GRANTS or #LOCAL_GRANTS == 0 then return status end
  local reply = {status}
  for _, v in ipairs(LOCAL_GRANTS) do reply[#reply + 1] = v end
  return reply
end

-- Tell a waiter it was granted `value` (its lease: `lease` ms).
local function wake(token, value, lease)
  local channel = channel_of(token)
  if LOCAL_GRANTS and channel and channel == CALLER_CHANNEL then
    LOCAL_GRANTS[#LOCAL_GRANTS + 1] = token
    LOCAL_GRANTS[#LOCAL_GRANTS + 1] = value
    return
  end
  local list = channel and (QUEUE .. ':wake:' .. channel) or wake_key(token)
  redis.call('RPUSH', list, channel and (token .. ' ' .. value) or value)
  keep_alive(list, lease + GRACE_MS)
end

-- Hand the resource to the first live waiter, if any, and wake it.
local function hand_off(now)
  local head, lease = live_head(now)
  if not head then return nil end
  dequeue(head)
  wake(head, grant(head, lease), lease)
  return head
end
