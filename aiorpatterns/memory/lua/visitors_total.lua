-- Take a SET shard's size as its share of the day's count, on the counter server (Redis in
-- Action §10.3.2, where the book INCRs the counter after the SADD on another server: a crash in
-- between undercounts for good, and a re-sent INCR overcounts). A shard only grows within a
-- day, so its reported size only rises: the counter moves by the rise over the size reported
-- before, and a size already reported (a retry, a late or reordered report) changes nothing.
-- The day's expected count is agreed on here too (set if absent, like SET NX).
-- KEYS[1] count     STRING, the day's number of distinct visitors (the sum of the sizes)
-- KEYS[2] expected  STRING, the day's expected visitor count (fixes the number of shards)
-- KEYS[3] sizes     HASH shard number -> the largest size reported for it
-- ARGV[1] shard     the shard's number
-- ARGV[2] size      its size as the shard server answered
-- ARGV[3] expected  the caller's expected count (the shard was chosen with it)
-- ARGV[4] ttl       retention in whole seconds, set on every key of the day when it is created
-- returns: {1, expected} once taken, or {-1, stored} when the day's stored expected count
--          differs from ARGV[3] (nothing written)

local stored = redis.call('GET', KEYS[2])
if not stored then
  redis.call('SET', KEYS[2], ARGV[3], 'EX', ARGV[4])
elseif stored ~= ARGV[3] then
  return {-1, stored}
end
local size = tonumber(ARGV[2])
local before = tonumber(redis.call('HGET', KEYS[3], ARGV[1]) or '0')
if size > before then
  if redis.call('HSET', KEYS[3], ARGV[1], ARGV[2]) == 1 and redis.call('HLEN', KEYS[3]) == 1 then
    redis.call('EXPIRE', KEYS[3], ARGV[4])
  end
  if redis.call('INCRBY', KEYS[1], size - before) == size - before then
    redis.call('EXPIRE', KEYS[1], ARGV[4])
  end
end
return {1, ARGV[3]}
