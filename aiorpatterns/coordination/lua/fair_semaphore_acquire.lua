-- Acquire a fair semaphore slot, or join its FIFO wait queue (Redis in Action §6.3.2-§6.3.5).
-- KEYS[1] timeouts ZSET holder token -> end of its lease (server time, ms)
-- KEYS[2] owners   ZSET holder token -> counter value at acquisition (the order of holders)
-- KEYS[3] counter  STRING INCR on every grant (never expires: its values are fencing tokens)
-- KEYS[4] queue    ZSET waiter token -> arrival time (us)
-- KEYS[5] waiters  HASH waiter token -> "<lease_ms> <deadline_ms>"
-- ARGV[1] token    the caller's token
-- ARGV[2] lease_ms the lease to hold the slot for
-- ARGV[3] wait_ms  0: try once; > 0: join (or stay in) the queue, alive for wait_ms
-- ARGV[4] limit    how many holders the semaphore admits
-- returns: the caller's counter value (> 0) if it holds a slot now, else minus the time until
--          the first holder's lease ends, in ms (< 0);
--          -1, doing nothing, if the caller already gave up (see release, mode abandon)
--          any of these followed by token, grant pairs of waiters of the caller's channel
--          handed a slot on the way (see wakeup.py)
-- Safe to run twice: the same call sent again finds its token holding (and answers the same
-- counter value: INCR ran once) or already queued (ZADD NX keeps its place).
-- @include fair_semaphore

local token, lease = ARGV[1], tonumber(ARGV[2])
local wait, limit = tonumber(ARGV[3]), tonumber(ARGV[4])
now = now_ms()
-- The caller's clean-up (a cancelled or failed acquire) already ran: this is its own request,
-- sent before the clean-up on another connection but run after it. Refuse it.
if abandoned(token) then return -1 end
collect_local_grants(token)  -- a waiter of our channel handed on below wakes from the reply
reclaim()

local mine = redis.call('ZSCORE', OWNERS, token)
if mine and redis.call('ZSCORE', TIMEOUTS, token) then
  leave(token)  -- handed to us while we were not listening
  return with_local_grants(tonumber(mine))
end

-- The book admits a newcomer if its rank in owners (ordered by counter) is below the limit
-- after adding it. Here the newcomer always gets the largest counter, in the same atomic step,
-- so that rank is the number of owners before it: counting first is the same test, and a slot
-- is never granted and then taken back (the book's counter/rank race, §6.3.4).
-- Free slots go to live waiters in arrival order before the caller.
local free = limit - redis.call('ZCARD', OWNERS)
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
local first = redis.call('ZRANGE', TIMEOUTS, 0, 0, 'WITHSCORES')[2]
if not first then return with_local_grants(-1) end
return with_local_grants(-math.max(tonumber(first) - now, 1))
