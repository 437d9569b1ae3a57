-- Release a read or write hold of a read-write lock and hand the lock on down the FIFO queue
-- (Redis in Action §6.2.3, extended to many readers or one writer).
-- KEYS[1] writer   STRING the writing holder's token
-- KEYS[2] readers  ZSET reading holder token -> end of its lease (server time, ms)
-- KEYS[3] fence    STRING fencing counter
-- KEYS[4] queue    ZSET waiter token -> arrival time (us)
-- KEYS[5] waiters  HASH waiter token -> "<lease_ms> <deadline_ms>"
-- ARGV[1] token    the caller's token ("w-<channel>.<hex>" or "r-<channel>.<hex>")
-- ARGV[2] mode     "release": give it up; "abandon": also leave the queue and refuse this
--                  token's late requests (a cancelled or failed acquire);
--                  "settle": keep the lock if it was handed to us, else leave the queue
-- returns: release/abandon: 1 if the caller held the lock, else 0;
--          settle: what acquire answers a holder (> 0) if the caller holds it, else 0;
--          either followed by token, grant pairs of waiters of the caller's channel handed
--          the lock (see wakeup.py)
-- When the lock frees (the writer leaves, or the last reader), the queue's head gets it: a
-- writer alone, or every reader up to the first waiting writer at once. A waiter leaving the
-- queue (abandon, settle) may unblock the readers behind it, so every mode hands on.
-- Safe to run twice: a release retires its token (a tombstone in its wake list), so the same
-- release sent again finds the token no longer holding but retired and answers 1 again; the
-- queue is pumped afresh, so a second run hands on nothing more.
-- @include rwlock

local token, mode = ARGV[1], ARGV[2]
if not well_formed(token) then
  return redis.error_reply('ERR rwlock token must start with "r-" or "w-": ' .. token)
end
collect_local_grants(token)
now = now_ms()
prune()
local held = holds(token)
local value = held and answer(token) or 0

if mode == 'abandon' then abandon(token) elseif mode == 'settle' then leave(token) end
-- Read before this run retires the token: a tombstone now is our own earlier run's.
local released = not held and mode == 'release' and abandoned(token)
if held and mode ~= 'settle' then
  if writes(token) then
    redis.call('DEL', WRITER)
  else
    redis.call('ZREM', READERS, token)
  end
  if mode == 'release' then retire(token) end
end

pump()

if mode == 'settle' then return with_local_grants(value) end
return with_local_grants((held or released) and 1 or 0)
