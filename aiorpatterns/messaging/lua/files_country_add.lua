-- Add one file's line counts per country and day, once (Redis in Action §6.6.2
-- daily_country_aggregate, whose ZADD writes the counts of a file read twice twice over, and
-- replaces rather than adds to the counts of a day spread over several files).
-- KEYS[1] receipt  STRING present once this file's counts were added (expires)
-- KEYS[2..] days   ZSET country -> lines, one per day, in the order of ARGV[2..]
-- ARGV[1] ttl_ms   how long the receipt is kept
-- ARGV[2..] counts JSON [[country, lines], ...] for the day of the same position in KEYS
-- returns: 1 (the counts are added, now or by an earlier run with this receipt)
-- Safe to run twice: the second run finds the receipt and adds nothing.
if redis.call('EXISTS', KEYS[1]) == 1 then return 1 end
for i = 2, #KEYS do
  for _, pair in ipairs(cjson.decode(ARGV[i])) do
    redis.call('ZINCRBY', KEYS[i], pair[2], pair[1])
  end
end
redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
return 1
