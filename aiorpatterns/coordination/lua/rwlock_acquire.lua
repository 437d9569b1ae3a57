-- Acquire a read-write lock for reading or writing, or join its FIFO wait queue
-- (Redis in Action §6.2, extended to many readers or one writer).
-- KEYS[1] writer   STRING the writing holder's token, with its lease as the PX expiry
-- KEYS[2] readers  ZSET reading holder token -> end of its lease (server time, ms)
-- KEYS[3] fence    STRING fencing counter, INCR on every write grant (never expires)
-- KEYS[4] queue    ZSET waiter token -> arrival time (us), readers and writers in one line
-- KEYS[5] waiters  HASH waiter token -> "<lease_ms> <deadline_ms>"
-- ARGV[1] token    the caller's token: "w-<channel>.<hex>" to write, "r-<channel>.<hex>" to read
-- ARGV[2] lease_ms the lease to hold the lock for
-- ARGV[3] wait_ms  0: try once; > 0: join (or stay in) the queue, alive for wait_ms
-- returns: if the caller holds the lock now, > 0: a writer's fence, or for a reader 1 + the
--          fence of the last write granted before it; else minus a wait hint in ms (< 0): the
--          writer's remaining lease, or the time until the first reader's lease ends;
--          -1, doing nothing, if the caller already gave up (see release, mode abandon)
--          any of these followed by token, grant pairs of waiters of the caller's channel
--          handed the lock on the way (see wakeup.py)
-- Safe to run twice: the same call sent again finds its token holding (and answers the same:
-- no write can be granted while it holds) or already queued (ZADD NX keeps its place); the
-- queue is pumped afresh, so nothing is handed on twice.
-- @include rwlock

local token, lease, wait = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
if not well_formed(token) then
  return redis.error_reply('ERR rwlock token must start with "r-" or "w-": ' .. token)
end
-- The caller's clean-up (a cancelled or failed acquire) already ran: this is its own request,
-- sent before the clean-up on another connection but run after it. Refuse it, or the lock
-- would go to a token nobody will release.
if abandoned(token) then return -1 end
collect_local_grants(token)  -- a waiter of our channel handed on below wakes from the reply
now = now_ms()
prune()
-- Leases that ran out and releases nobody handed on may have freed the lock for the queue.
pump()
if holds(token) then
  leave(token)  -- handed to us (just now, or while we were not listening)
  return with_local_grants(answer(token))
end

-- After pump() the queue is empty or its head must wait: a newcomer never overtakes it (a
-- reader does not pass a waiting writer), so only a caller facing an empty queue may enter.
if not live_head(now) and admits(token) then
  dequeue(token)
  return with_local_grants(grant(token, lease))
end

if wait > 0 then enqueue(token, lease, wait, now) end
local pttl = redis.call('PTTL', WRITER)
if pttl > 0 then return with_local_grants(-pttl) end
local first = redis.call('ZRANGE', READERS, 0, 0, 'WITHSCORES')[2]
if not first then return with_local_grants(-1) end
return with_local_grants(-math.max(tonumber(first) - now, 1))
