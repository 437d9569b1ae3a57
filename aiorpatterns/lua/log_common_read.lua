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
local seconds = tonumber(redis.call('TIME')[1])
local period = tonumber(ARGV[3])
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
  if want_current then
    label = string.format('%d', current)
  else
    label, key = stored, KEYS[1]
  end
elseif want_current then
  label = string.format('%d', current)
else
  label, key = redis.call('GET', KEYS[4]), KEYS[3]
end
if not label then
  return {false, {}}
end
local items = {}
if key then
  items = redis.call('ZREVRANGE', key, 0, tonumber(ARGV[2]), 'WITHSCORES')
end
return {label, items}
