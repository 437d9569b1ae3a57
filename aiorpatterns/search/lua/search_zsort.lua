-- Run a parsed query and cache its ids scored by weighted numeric fields (Redis in Action §7.2.2,
-- search_and_zsort). A document's score is the sum, in the order given, of weight * value over
-- the weighted fields; a document without a value for a field gets nothing from it (the book's
-- ZINTERSTORE would drop the document instead).
-- KEYS[1] cache     ZSET the scored result is stored in (expires after ttl_ms)
-- KEYS[2] scratch   temporary ZSET (deleted before returning)
-- KEYS[3..2+W]      one ZSET per weighted field (document id -> value)
-- KEYS[3+W..]       the plan's keys (see _search_plan.lua)
-- ARGV[1] ttl_ms    ARGV[2] start    ARGV[3] num    ARGV[4] desc ('1' for highest first)
-- ARGV[5] W         ARGV[6..5+W] the weights
-- ARGV[6+W..]       the plan (see _search_plan.lua)
-- returns: {total, ids of the page}; nothing is cached when total is 0
-- @include search_plan
local cache, scratch = KEYS[1], KEYS[2]
local weighted = tonumber(ARGV[5])
local result, temporary = plan_result(3 + weighted, 6 + weighted, false)

-- Every match starts at 0 (a SET member scores 1, times weight 0), then each field adds its part.
redis.call('ZUNIONSTORE', cache, 1, result, 'WEIGHTS', 0)
for i = 1, weighted do
  redis.call('ZINTERSTORE', scratch, 2, result, KEYS[2 + i], 'WEIGHTS', 0, ARGV[5 + i])
  redis.call('ZUNIONSTORE', cache, 2, cache, scratch)
end
redis.call('DEL', scratch)
if temporary then
  redis.call('DEL', result)
end

local total = redis.call('ZCARD', cache)
if total == 0 then
  return {0, {}}
end
redis.call('PEXPIRE', cache, ARGV[1])
local start, num = tonumber(ARGV[2]), tonumber(ARGV[3])
if num == 0 then
  return {total, {}}
end
local range = ARGV[4] == '1' and 'ZREVRANGE' or 'ZRANGE'
return {total, redis.call(range, cache, start, start + num - 1)}
