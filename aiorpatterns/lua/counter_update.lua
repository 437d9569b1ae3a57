-- Add to a counter at every precision and register it in its group's index (Redis in Action
-- §5.2.1 update_counter), atomically, so the cleaner never sees a sample without its index entry.
-- KEYS[1] known    ZSET '<precision>:<name>' -> 0, the index of the group's counters
-- KEYS[2..]        one HASH per precision (sample start -> count), in the order of ARGV[4..]
-- ARGV[1] name     the counter's name
-- ARGV[2] count    a whole number >= 1
-- ARGV[3] now      Unix time in whole seconds, or '' for the server's clock
-- ARGV[4..]        the precisions, whole seconds
-- returns: the sample start (text) at the first precision
local now = tonumber(ARGV[3]) or tonumber(redis.call('TIME')[1])
local first
for i = 4, #ARGV do
  local precision = tonumber(ARGV[i])
  local start = string.format('%d', now - now % precision)
  first = first or start
  redis.call('ZADD', KEYS[1], 0, ARGV[i] .. ':' .. ARGV[1])
  redis.call('HINCRBY', KEYS[i - 2], start, ARGV[2])
end
return first
