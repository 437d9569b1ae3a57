-- Acquire a lock, or join its FIFO wait queue (Redis in Action §6.2.3, §11.2).
-- KEYS[1] lock     STRING holder token, with the lease as its PX expiry
-- KEYS[2] fence    STRING fencing counter, INCR on every grant (never expires)
-- KEYS[3] queue    ZSET waiter token -> arrival time (us)
-- KEYS[4] waiters  HASH waiter token -> "<lease_ms> <deadline_ms>"
-- ARGV[1] token    the caller's token
-- ARGV[2] lease_ms the lease to hold the lock for
-- ARGV[3] wait_ms  0: try once; > 0: join (or stay in) the queue, alive for wait_ms
-- returns: the fencing token (> 0) if the caller holds the lock now, else minus the
--          holder's remaining lease in ms (< 0);
--          -1, doing nothing, if the caller already gave up (see release, mode abandon)
--          any of these followed by token, grant pairs of waiters of the caller's channel
--          handed the lock on the way (see wakeup.py)
-- Safe to run twice: the same call sent again finds its token holding (and answers the same
-- fence: no grant happened since) or already queued (ZADD NX keeps its place).
local LOCK, FENCE, QUEUE, WAITERS = KEYS[1], KEYS[2], KEYS[3], KEYS[4]

local function grant(token, lease_ms)
  redis.call('SET', LOCK, token, 'PX', lease_ms)
  return redis.call('INCR', FENCE)
end

-- @include waitqueue

local token, lease, wait = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
-- The caller's clean-up (a cancelled or failed acquire) already ran: this is its own request,
-- sent before the clean-up on another connection but run after it. Refuse it, or the lock
-- would go to a token nobody will release.
if abandoned(token) then return -1 end
collect_local_grants(token)  -- a waiter of our channel handed on below wakes from the reply
local holder = redis.call('GET', LOCK)

if holder == token then
  leave(token)  -- handed to us while we were not listening: the newest fence is ours
  return with_local_grants(tonumber(redis.call('GET', FENCE)))
end

local now = now_ms()
if not holder then
  local head = live_head(now)
  if not head or head == token then
    dequeue(token)
    return with_local_grants(grant(token, lease))
  end
  hand_off(now)
end

if wait > 0 then enqueue(token, lease, wait, now) end
local pttl = redis.call('PTTL', LOCK)
if pttl < 1 then pttl = 1 end
return with_local_grants(-pttl)
