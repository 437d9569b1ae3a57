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
local seconds = tonumber(redis.call('TIME')[1])
local period = tonumber(ARGV[2])
local current = seconds - seconds % period
local stored = redis.call('GET', KEYS[2])
local start = stored and tonumber(stored)
local want_current = ARGV[1] == 'current'

local label, key
if start and start >= current then
  if want_current then
    label, key = stored, KEYS[1]
  else
    label, key = redis.call('GET', KEYS[4]), KEYS[3]
  end
elseif start then
  if not want_current then
    label, key = stored, KEYS[1]
  end
elseif not want_current then
  label, key = redis.call('GET', KEYS[4]), KEYS[3]
end
if not label then
  return {false, {}}
end
return {label, redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')}
