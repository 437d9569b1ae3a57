-- Read one page of a cached search result and keep it alive (Redis in Action §7.2.1: the book
-- means to refresh the cache's TTL here, but its EXPIRE misses the key prefix and never hits).
-- KEYS[1] cache     LIST (sorted by a field) or ZSET (scored) of document ids
-- ARGV[1] ttl_ms    ARGV[2] start    ARGV[3] num    ARGV[4] desc ('1' for highest first; ZSET only)
-- returns: {total, ids of the page}, or nil when the cache has expired
if redis.call('PEXPIRE', KEYS[1], ARGV[1]) == 0 then
  return false
end
local start, num = tonumber(ARGV[2]), tonumber(ARGV[3])
local stop = start + num - 1
local kind = redis.call('TYPE', KEYS[1]).ok
if kind == 'list' then
  local total = redis.call('LLEN', KEYS[1])
  if num == 0 then return {total, {}} end
  return {total, redis.call('LRANGE', KEYS[1], start, stop)}
end
local total = redis.call('ZCARD', KEYS[1])
if num == 0 then return {total, {}} end
local range = ARGV[4] == '1' and 'ZREVRANGE' or 'ZRANGE'
return {total, redis.call(range, KEYS[1], start, stop)}
