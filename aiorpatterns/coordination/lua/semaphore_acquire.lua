-- Acquire a semaphore slot, or join its FIFO wait queue (Redis in Action §6.3.1, §11.2.2).
-- KEYS[1] holders  ZSET holder token -> end of its lease (server time, ms)
-- KEYS[2] queue    ZSET waiter token -> arrival time (us)
-- KEYS[3] waiters  HASH waiter token -> "<lease_ms> <deadline_ms>"
-- ARGV[1] token    the caller's token
-- ARGV[2] lease_ms the lease to hold the slot for
-- ARGV[3] wait_ms  0: try once; > 0: join (or stay in) the queue, alive for wait_ms
-- ARGV[4] limit    how many holders the semaphore admits
-- returns: 1 if the caller holds a slot now, else minus the time until the first
--          holder's lease ends, in ms (< 0);
--          -1, doing nothing, if the caller already gave up (see release, mode abandon)
--          any of these followed by token, grant pairs of waiters of the caller's channel
--          handed a slot on the way (see wakeup.py)
-- Safe to run twice: the same call sent again finds its token holding (and answers 1) or
-- already queued (ZADD NX keeps its place); free slots are counted afresh, so none is handed on
-- twice.
local HOLDERS, QUEUE, WAITERS = KEYS[1], KEYS[2], KEYS[3]
local now
-- Declared before the wait queue is inlined: its hand_off() calls grant().
local grant

-- @include waitqueue

grant = function(token, lease_ms)
  redis.call('ZADD', HOLDERS, now + lease_ms, token)
  keep_alive(HOLDERS, lease_ms)
  return 1
end

local token, lease = ARGV[1], tonumber(ARGV[2])
local wait, limit = tonumber(ARGV[3]), tonumber(ARGV[4])
now = now_ms()
-- The caller's clean-up (a cancelled or failed acquire) already ran: this is its own request,
-- sent before the clean-up on another connection but run after it. Refuse it.
if abandoned(token) then return -1 end
collect_local_grants(token)  -- a waiter of our channel handed on below wakes from the reply
-- Scores are the server's clock, so a holder whose lease ran out is gone for everyone at once
-- (the book scores by each client's clock, and a slow clock over-admits).
redis.call('ZREMRANGEBYSCORE', HOLDERS, '-inf', now)

if redis.call('ZSCORE', HOLDERS, token) then
  leave(token)  -- handed to us while we were not listening
  return with_local_grants(1)
end

-- Free slots (from releases nobody handed on, or leases that ran out) go to live waiters in
-- arrival order before the caller: a newcomer never overtakes the queue.
local free = limit - redis.call('ZCARD', HOLDERS)
while free > 0 do
  local head = live_head(now)
  if not head or head == token then
    dequeue(token)
    return with_local_grants(grant(token, lease))
  end
  hand_off(now)
  free = free - 1
end

if wait > 0 then enqueue(token, lease, wait, now) end
local first = redis.call('ZRANGE', HOLDERS, 0, 0, 'WITHSCORES')[2]
if not first then return with_local_grants(-1) end
return with_local_grants(-math.max(tonumber(first) - now, 1))
