-- Add a message to a capped recent log, newest first (Redis in Action §5.1.1 log_recent),
-- stamped by the Redis server's clock so logs from many machines compare by one clock.
-- Retry-safe by receipt: the caller's token keeps the reply, so the same call sent again adds
-- no second line.
-- KEYS[1] recent   LIST of '<seconds>.<microseconds> <message>', newest first
-- ARGV[1] message
-- ARGV[2] keep     how many entries the list keeps (the newest)
-- ARGV[3] token    the caller's token for this call (its receipt)
-- returns: the entry's timestamp as text, '<seconds>.<microseconds>'
-- @include once

local kept = receipt(KEYS[1], ARGV[3])
if kept then return kept end
local t = redis.call('TIME')
-- Built as text: Lua numbers would round a microsecond timestamp to 14 digits.
local now = t[1] .. '.' .. string.format('%06d', tonumber(t[2]))
redis.call('LPUSH', KEYS[1], now .. ' ' .. ARGV[1])
redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[2]) - 1)
return remember(KEYS[1], ARGV[3], now)
