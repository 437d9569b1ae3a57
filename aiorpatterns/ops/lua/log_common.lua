-- Count a message in the current period's common log, rotating the previous period out first,
-- and add it to the recent log (Redis in Action §5.1.2 log_common). The book WATCHes the start
-- key and uses each client's clock; here the period comes from the server's TIME and the check,
-- the rotation and the count are one atomic step, so exactly one caller rotates, no count lands
-- in the wrong period, and a missing ZSET (nothing logged, or evicted) rotates as empty instead
-- of failing inside EXEC as RENAME of a missing key does. Retry-safe by receipt: the caller's
-- token keeps the reply, so the same call sent again neither counts nor logs a second time.
-- KEYS[1] common   ZSET message -> count in the current period
-- KEYS[2] start    STRING start of the current period (Unix seconds)
-- KEYS[3] last     ZSET message -> count in the previous period
-- KEYS[4] pstart   STRING start of the previous period (Unix seconds)
-- KEYS[5] recent   LIST the recent log of the same name and severity
-- ARGV[1] message
-- ARGV[2] keep     how many entries the recent log keeps
-- ARGV[3] period   length of a period in whole seconds (3600: the book's hour)
-- ARGV[4] token    the caller's token for this call (its receipt)
-- returns: {count of the message in the current period, entry timestamp as text}
-- @include period
-- @include once

local kept = receipt(DATA, ARGV[4])
if kept then return kept end

local t = redis.call('TIME')
rotate(tonumber(t[1]), tonumber(ARGV[3]))
local count = redis.call('ZINCRBY', DATA, 1, ARGV[1])
local now = t[1] .. '.' .. string.format('%06d', tonumber(t[2]))
redis.call('LPUSH', KEYS[5], now .. ' ' .. ARGV[1])
redis.call('LTRIM', KEYS[5], 0, tonumber(ARGV[2]) - 1)
return remember(DATA, ARGV[4], {count, now})
