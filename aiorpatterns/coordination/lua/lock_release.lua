-- Release a lock we hold and hand it to the next live waiter (Redis in Action §6.2.3, §11.2).
-- KEYS[1] lock     STRING holder token
-- KEYS[2] fence    STRING fencing counter
-- KEYS[3] queue    ZSET waiter token -> arrival time (us)
-- KEYS[4] waiters  HASH waiter token -> "<lease_ms> <deadline_ms>"
-- ARGV[1] token    the caller's token
-- ARGV[2] mode     "release": give it up; "abandon": also leave the queue and refuse this
--                  token's late requests (a cancelled or failed acquire);
--                  "settle": keep the lock if it was handed to us, else leave the queue
-- returns: release/abandon: 1 if the caller held the lock, else 0, followed by the token and
--          fence of a waiter of the caller's channel the lock was handed to (see wakeup.py);
--          settle: the fence if the caller holds the lock, else 0
-- Safe to run twice: a release retires its token (a tombstone in its wake list), so the same
-- release sent again finds the token no longer holding but retired and answers 1 again, handing
-- nothing on a second time; abandon and settle leave the same state however often they run.
local LOCK, FENCE, QUEUE, WAITERS = KEYS[1], KEYS[2], KEYS[3], KEYS[4]

local function grant(token, lease_ms)
  redis.call('SET', LOCK, token, 'PX', lease_ms)
  return redis.call('INCR', FENCE)
end

-- @include waitqueue

local token, mode = ARGV[1], ARGV[2]
collect_local_grants(token)
local held = redis.call('GET', LOCK) == token

if mode == 'abandon' then abandon(token) elseif mode == 'settle' then leave(token) end
if mode == 'settle' then
  if held then return tonumber(redis.call('GET', FENCE)) end
  return 0
end
if not held then
  -- Our own earlier run (a client retry re-sent it after a lost reply) released it.
  if mode == 'release' and abandoned(token) then return 1 end
  return 0
end
redis.call('DEL', LOCK)
if mode == 'release' then retire(token) end
hand_off(now_ms())
return with_local_grants(1)
