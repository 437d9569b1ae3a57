-- Count one visit of a day approximately in a HyperLogLog (the modern fit for Redis in Action
-- §9.2.2), giving a new day's key its retention in the same step. Retry-safe: PFADD of the same
-- id changes nothing the second time; a call that moved the estimate keeps that answer under the
-- caller's token (a receipt), so the same call sent again still answers 1, not 0.
-- KEYS[1] hll   the day's HyperLogLog of visitor ids
-- ARGV[1] id    the visitor id, decimal text
-- ARGV[2] ttl   retention in whole seconds, set when the key is created
-- ARGV[3] token the caller's token for this visit (its receipt)
-- returns: 1 if the estimate changed (almost always a new visitor), else 0
-- @include once

local fresh = redis.call('EXISTS', KEYS[1]) == 0
local changed = redis.call('PFADD', KEYS[1], ARGV[1])
if fresh then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
if changed == 0 then
  return receipt(KEYS[1], ARGV[3]) or 0
end
return remember(KEYS[1], ARGV[3], 1)
