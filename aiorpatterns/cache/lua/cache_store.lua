-- Store, give up or drop a cached value, and wake the callers waiting for it (Redis in Action
-- §2.3 cache_request's SETEX, with the claim of cache_claim.lua settled in the same step).
-- KEYS[1] value    STRING the entry: "<version>|<soft>|<tags>|<kind><payload>" (entries.py)
-- KEYS[2] claim    STRING the computing caller's token
-- KEYS[3] ready    LIST waiters block on
-- KEYS[4] fresh    STRING present while the value is within its soft TTL
-- ARGV[1] token    the caller's token (for set and drop, one per call: its receipt, _once.lua)
-- ARGV[2] mode     "fill": store the value this token computed, if it still holds the claim;
--                  "release": give the claim up (the computation failed or was cancelled);
--                  "set": store the value whoever computes (an explicit set wins: the claim is
--                  dropped, so a computation in flight stores nothing); "drop": delete the
--                  value and any claim (an invalidation: a computation in flight stores nothing)
-- ARGV[3] entry    the entry to store (fill, set)
-- ARGV[4] ttl_ms   how long the entry stays (fill, set)
-- ARGV[5] soft_ms  its soft TTL, or 0 for none (fill, set)
-- ARGV[6] wake_ms  how long the wake-up signal stays (waiters that start blocking late see it)
-- returns: 1 if stored (fill, set) or released or dropped by this run, else 0
-- Safe to run twice: a fill or release finds its claim gone the second time and does nothing
-- (its caller does not read the reply); a set or a drop keeps a receipt under its token, so a
-- re-sent set never overwrites a later value and a re-sent drop answers as the first did.
-- @include once
local token, mode = ARGV[1], ARGV[2]
local owned = redis.call('GET', KEYS[2]) == token

local function wake()
  redis.call('DEL', KEYS[3])
  redis.call('RPUSH', KEYS[3], '1')
  redis.call('PEXPIRE', KEYS[3], ARGV[6])
end

local function store()
  redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
  if tonumber(ARGV[5]) > 0 then
    redis.call('SET', KEYS[4], '1', 'PX', ARGV[5])
  else
    redis.call('DEL', KEYS[4])
  end
end

if mode == 'set' or mode == 'drop' then
  local kept = receipt(KEYS[1], token)
  if kept then return kept end
  local done = 1
  if mode == 'set' then
    store()
    redis.call('DEL', KEYS[2])
  else
    done = redis.call('EXISTS', KEYS[1])
    redis.call('DEL', KEYS[1], KEYS[4], KEYS[2])
  end
  wake()
  return remember(KEYS[1], token, done)
end
if not owned then return 0 end  -- our claim ended (or was dropped): someone else decides
redis.call('DEL', KEYS[2])
if mode == 'fill' then store() end
wake()
return 1
