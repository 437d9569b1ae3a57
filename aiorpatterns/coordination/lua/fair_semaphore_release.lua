-- Release a fair semaphore slot and hand free slots to live waiters (Redis in Action §6.3.2).
-- KEYS[1] timeouts ZSET holder token -> end of its lease (server time, ms)
-- KEYS[2] owners   ZSET holder token -> counter value at acquisition (the order of holders)
-- KEYS[3] counter  STRING INCR on every grant (never expires: its values are fencing tokens)
-- KEYS[4] queue    ZSET waiter token -> arrival time (us)
-- KEYS[5] waiters  HASH waiter token -> "<lease_ms> <deadline_ms>"
-- ARGV[1] token    the caller's token
-- ARGV[2] mode     "release": give it up; "abandon": also leave the queue and refuse this
--                  token's late requests (a cancelled or failed acquire);
--                  "settle": keep a slot if one was handed to us, else leave the queue
-- ARGV[3] limit    how many holders the semaphore admits
-- returns: release/abandon: 1 if the caller held a slot, else 0, followed by token, grant
--          pairs of waiters of the caller's channel handed a slot (see wakeup.py);
--          settle: the caller's counter value if it holds a slot, else 0
-- Safe to run twice: a release retires its token (a tombstone in its wake list), so the same
-- release sent again finds the token no longer holding but retired and answers 1 again; the
-- hand-off counts free slots afresh, so a second run hands on nothing more.
-- @include fair_semaphore

local token, mode, limit = ARGV[1], ARGV[2], tonumber(ARGV[3])
collect_local_grants(token)
now = now_ms()
reclaim()
local mine = redis.call('ZSCORE', OWNERS, token)
-- Both records, or it is not ours (the book's release trusts the timeouts ZSET alone).
local held = mine and redis.call('ZSCORE', TIMEOUTS, token) and true or false

if mode == 'abandon' then abandon(token) elseif mode == 'settle' then leave(token) end
-- Read before this run retires the token: a tombstone now is our own earlier run's.
local released = not held and mode == 'release' and abandoned(token)
if mode ~= 'settle' then
  redis.call('ZREM', OWNERS, token)
  redis.call('ZREM', TIMEOUTS, token)
  if held and mode == 'release' then retire(token) end
end

-- Hand on every free slot, not only ours: leases that ran out were reclaimed above too.
local free = limit - redis.call('ZCARD', OWNERS)
while free > 0 and hand_off(now) do free = free - 1 end

if released then return with_local_grants(1) end
if not held then return with_local_grants(0) end
if mode == 'settle' then return tonumber(mine) end
return with_local_grants(1)
