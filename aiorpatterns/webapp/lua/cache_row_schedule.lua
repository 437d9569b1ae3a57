-- Schedule a row to be cached every delay seconds, or stop caching it (Redis in Action §2.4
-- schedule_row_cache, and the delete path of cache_rows: three commands there, one step here).
-- KEYS[1] delay    ZSET row -> refresh interval (seconds)
-- KEYS[2] schedule ZSET row -> when it is next due (server time); a claimed row: lease end
-- KEYS[3] claims   HASH row -> token of the worker refreshing it
-- KEYS[4] data     HASH row -> cached JSON
-- KEYS[5] wake     LIST idle workers block on
-- ARGV[1] row      ARGV[2] delay (seconds; 0 or less: stop caching and drop the cached row)
-- ARGV[3] wake_ms  how long a wake-up signal stays
-- returns: 1 if scheduled, 0 if removed
-- Retry-safe as it is: a second run writes the same delay, due time (a moment later) and
-- wake-up signal, or removes what is already gone, and answers the same.
local row, delay = ARGV[1], tonumber(ARGV[2])
if delay <= 0 then
  redis.call('ZREM', KEYS[1], row)
  redis.call('ZREM', KEYS[2], row)
  redis.call('HDEL', KEYS[3], row)
  redis.call('HDEL', KEYS[4], row)
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[2], row)
if redis.call('HEXISTS', KEYS[3], row) == 0 then
  -- A claimed row keeps its lease: its worker reschedules it with the new delay.
  local t = redis.call('TIME')
  redis.call('ZADD', KEYS[2], t[1] .. '.' .. string.format('%06d', tonumber(t[2])), row)
  redis.call('LPUSH', KEYS[5], '1')
  redis.call('LTRIM', KEYS[5], 0, 0)
  redis.call('PEXPIRE', KEYS[5], ARGV[3])
end
return 1
