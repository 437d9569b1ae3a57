-- Read the current or the previous period's aggregate statistics as of the server's clock
-- (Redis in Action §5.2.3 get_stats). Rotation happens on the next update; a read after the
-- period ended already sees the stored period as the previous one, without writing.
-- KEYS[1] stats    ZSET min, max, count, sum, sumsq of the stored current period
-- KEYS[2] start    STRING start of the stored current period
-- KEYS[3] last     ZSET the same for the stored previous period
-- KEYS[4] pstart   STRING start of the stored previous period
-- ARGV[1] which    'current' or 'previous'
-- ARGV[2] period   length of a period in whole seconds
-- returns: {period start as text, {member, score, ...}}, or {false, {}} if there is no data
-- @include period

local seconds = tonumber(redis.call('TIME')[1])
local label, key = period_to_read(seconds, tonumber(ARGV[2]), ARGV[1] == 'current')
if not label or not key then return {false, {}} end
return {label, redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')}
