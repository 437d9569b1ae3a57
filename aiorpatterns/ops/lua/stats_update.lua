-- Add a value to the current period's aggregate statistics, rotating the previous period out
-- first (Redis in Action §5.2.3 update_stats). The book WATCHes the start key and folds the value
-- into min and max with ZUNIONSTORE over unprefixed temporary keys (cross-slot on a cluster);
-- ZADD LT / GT do the same on the one key, and the period comes from the server's clock.
-- Retry-safe by receipt: the caller's token keeps the reply, so the same call sent again adds
-- no second sample (and rotates nothing).
-- KEYS[1] stats    ZSET min, max, count, sum, sumsq of the current period
-- KEYS[2] start    STRING start of the current period (Unix seconds)
-- KEYS[3] last     ZSET the same for the previous period
-- KEYS[4] pstart   STRING start of the previous period
-- ARGV[1] value
-- ARGV[2] square   the value squared (computed by the caller, in full double precision)
-- ARGV[3] period   length of a period in whole seconds (3600: the book's hour)
-- ARGV[4] token    the caller's token for this call (its receipt)
-- returns: {period start as text, {member, score, ...}} after the update
-- @include period
-- @include once

local kept = receipt(DATA, ARGV[4])
if kept then return kept end

local label = rotate(tonumber(redis.call('TIME')[1]), tonumber(ARGV[3]))
redis.call('ZADD', DATA, 'LT', ARGV[1], 'min')
redis.call('ZADD', DATA, 'GT', ARGV[1], 'max')
redis.call('ZINCRBY', DATA, 1, 'count')
redis.call('ZINCRBY', DATA, ARGV[1], 'sum')
redis.call('ZINCRBY', DATA, ARGV[2], 'sumsq')
return remember(DATA, ARGV[4], {label, redis.call('ZRANGE', DATA, 0, -1, 'WITHSCORES')})
