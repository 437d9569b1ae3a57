-- Record a context's average in a ranking and keep only the slowest entries (Redis in Action
-- §5.2.3 access_time: ZADD then ZREMRANGEBYRANK), atomically.
-- KEYS[1] slowest  ZSET context -> average
-- ARGV[1] context
-- ARGV[2] average
-- ARGV[3] keep     how many contexts the ranking keeps (the slowest)
-- returns: 1
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(tonumber(ARGV[3]) + 1))
return 1
