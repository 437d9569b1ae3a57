-- Count one visit of a day approximately in a HyperLogLog (the modern fit for Redis in Action
-- §9.2.2), giving a new day's key its retention in the same step.
-- KEYS[1] hll   the day's HyperLogLog of visitor ids
-- ARGV[1] id    the visitor id, decimal text
-- ARGV[2] ttl   retention in whole seconds, set when the key is created
-- returns: 1 if the estimate changed (almost always a new visitor), else 0
local fresh = redis.call('EXISTS', KEYS[1]) == 0
local changed = redis.call('PFADD', KEYS[1], ARGV[1])
if fresh then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return changed
