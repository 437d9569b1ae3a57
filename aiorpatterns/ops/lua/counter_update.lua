-- Add to a counter at every precision and register it in its group's index (Redis in Action
-- §5.2.1 update_counter), atomically, so the cleaner never sees a sample without its index entry.
-- Retry-safe by receipt: the caller's token keeps the reply, so the same call sent again adds
-- nothing. Every sample is checked before the first write: a sum past a Redis integer (signed
-- 64-bit) refuses the whole step, never leaving some precisions counted and others not.
-- KEYS[1] known    ZSET '<precision>:<name>' -> 0, the index of the group's counters
-- KEYS[2..]        one HASH per precision (sample start -> count), in the order of ARGV[6..]
-- ARGV[1] name     the counter's name
-- ARGV[2] count    a whole number >= 1
-- ARGV[3] now      Unix time in whole seconds, or '' for the server's clock
-- ARGV[4] token    the caller's token for this call (its receipt)
-- ARGV[5] room     2^63 - 1 - count, decimal text: the largest sample the count may join
-- ARGV[6..]        the precisions, whole seconds
-- returns: the sample start (text) at the first precision, or {'overflow', precision} when a
--          sample would pass 2^63 - 1, or {'not an integer', precision} when a sample holds
--          something else (nothing written in either case)
-- @include once

local kept = receipt(KEYS[1], ARGV[4])
if kept then return kept end

-- Is the stored decimal integer `stored` above `room` (both exact text, room >= 0)?
local function above(stored, room)
  if string.sub(stored, 1, 1) == '-' then return false end
  if #stored ~= #room then return #stored > #room end
  return stored > room
end

local now = tonumber(ARGV[3]) or tonumber(redis.call('TIME')[1])
local starts = {}
for i = 6, #ARGV do
  local precision = tonumber(ARGV[i])
  local start = string.format('%d', now - now % precision)
  starts[i] = start
  local stored = redis.call('HGET', KEYS[i - 4], start)
  if stored and not string.match(stored, '^%-?%d+$') then
    return {'not an integer', ARGV[i]}
  end
  if stored and above(stored, ARGV[5]) then
    return {'overflow', ARGV[i]}
  end
end
for i = 6, #ARGV do
  redis.call('ZADD', KEYS[1], 0, ARGV[i] .. ':' .. ARGV[1])
  redis.call('HINCRBY', KEYS[i - 4], starts[i], ARGV[2])
end
return remember(KEYS[1], ARGV[4], starts[6])
