-- Count one visit of a day exactly (Redis in Action §9.2.2 count_visit, get_expected): the
-- day's expected size is agreed on (set if absent, like SET NX), then the id joins its SET shard
-- and, if new, the day's counter goes up, all in one step, so a crash cannot undercount.
-- Retry-safe: SADD counts a visitor once however often the call is sent; a call that found a
-- new visitor keeps that answer under the caller's token (a receipt), so the same call sent
-- again still answers "new" instead of "seen before". Repeat visits write no receipt.
-- KEYS[1] count     STRING, the day's number of distinct visitors
-- KEYS[2] expected  STRING, the day's expected visitor count (fixes the number of shards)
-- KEYS[3] shard     SET of 60-bit visitor ids, the shard of ARGV[1] for ARGV[2]
-- ARGV[1] id        the visitor id, decimal text
-- ARGV[2] expected  the caller's expected count, decimal text (the shard was chosen with it)
-- ARGV[3] ttl       retention in whole seconds, set on every key of the day when it is created
-- ARGV[4] token     the caller's token for this visit (its receipt)
-- returns: {1, expected} new visitor, {0, expected} seen before, or {-1, stored} when the day's
--          stored expected count differs from ARGV[2] (nothing written: choose the shard again)
-- @include once

local stored = redis.call('GET', KEYS[2])
if not stored then
  redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
elseif stored ~= ARGV[2] then
  return {-1, stored}
end
if redis.call('SADD', KEYS[3], ARGV[1]) == 0 then
  local kept = receipt(KEYS[1], ARGV[4])
  if kept then return kept end
  return {0, ARGV[2]}
end
if redis.call('SCARD', KEYS[3]) == 1 then
  redis.call('EXPIRE', KEYS[3], ARGV[3])
end
if redis.call('INCR', KEYS[1]) == 1 then
  redis.call('EXPIRE', KEYS[1], ARGV[3])
end
return remember(KEYS[1], ARGV[4], {1, ARGV[2]})
