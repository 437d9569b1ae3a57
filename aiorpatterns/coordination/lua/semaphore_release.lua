-- Release a semaphore slot and hand free slots to live waiters (Redis in Action §6.3.1, §11.2.2).
-- KEYS[1] holders  ZSET holder token -> end of its lease (server time, ms)
-- KEYS[2] queue    ZSET waiter token -> arrival time (us)
-- KEYS[3] waiters  HASH waiter token -> "<lease_ms> <deadline_ms>"
-- ARGV[1] token    the caller's token
-- ARGV[2] mode     "release": give it up; "abandon": also leave the queue and refuse this
--                  token's late requests (a cancelled or failed acquire);
--                  "settle": keep a slot if one was handed to us, else leave the queue
-- ARGV[3] limit    how many holders the semaphore admits
-- returns: release/abandon: 1 if the caller held a slot, else 0, followed by token, grant
--          pairs of waiters of the caller's channel handed a slot (see wakeup.py);
--          settle: 1 if the caller holds a slot, else 0
-- Safe to run twice: a release retires its token (a tombstone in its wake list), so the same
-- release sent again finds the token no longer holding but retired and answers 1 again; the
-- hand-off counts free slots afresh, so a second run hands on nothing more.
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

local token, mode, limit = ARGV[1], ARGV[2], tonumber(ARGV[3])
collect_local_grants(token)
now = now_ms()
redis.call('ZREMRANGEBYSCORE', HOLDERS, '-inf', now)
local held = redis.call('ZSCORE', HOLDERS, token) ~= false

if mode == 'abandon' then abandon(token) elseif mode == 'settle' then leave(token) end
-- Read before this run retires the token: a tombstone now is our own earlier run's.
local released = not held and mode == 'release' and abandoned(token)
if held and mode ~= 'settle' then
  redis.call('ZREM', HOLDERS, token)
  if mode == 'release' then retire(token) end
end

-- Hand on every free slot, not only ours: leases that ran out were reclaimed above too.
local free = limit - redis.call('ZCARD', HOLDERS)
while free > 0 and hand_off(now) do free = free - 1 end

return with_local_grants((held or released) and 1 or 0)
