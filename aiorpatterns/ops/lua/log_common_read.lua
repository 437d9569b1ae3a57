-- Read the current or the previous period of a common log as of the server's clock (Redis in
-- Action §5.1.2). Rotation happens on the next write; a read after the period ended already
-- sees the stored period as the previous one and the current one as empty, without writing.
-- KEYS[1] common   ZSET message -> count in the stored current period
-- KEYS[2] start    STRING start of the stored current period
-- KEYS[3] last     ZSET message -> count in the stored previous period
-- KEYS[4] pstart   STRING start of the stored previous period
-- ARGV[1] which    'current' or 'previous'
-- ARGV[2] stop     last rank to return (-1: every message), most common first
-- ARGV[3] period   length of a period in whole seconds
-- returns: {period start as text, or false if there is no such period; {message, count, ...}}
-- @include period

local seconds = tonumber(redis.call('TIME')[1])
local label, key = period_to_read(seconds, tonumber(ARGV[3]), ARGV[1] == 'current')
if not label then return {false, {}} end
local items = {}
if key then items = redis.call('ZREVRANGE', key, 0, tonumber(ARGV[2]), 'WITHSCORES') end
return {label, items}
