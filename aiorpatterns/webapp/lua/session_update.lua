-- Record a page view for a login token (Redis in Action §2.1, §4.5 update_token).
-- KEYS[1] login    HASH token -> user
-- KEYS[2] recent   ZSET token -> last seen (server time, seconds)
-- KEYS[3] viewed   ZSET item -> minus its number of views (all tokens)
-- KEYS[4] history  ZSET item -> when this token last viewed it (server time, seconds)
-- ARGV[1] token    the login token
-- ARGV[2] user     the user the token belongs to
-- ARGV[3] keep     how many items the token's history keeps (the newest)
-- ARGV[4] item     optional: the item viewed
-- ARGV[5] call     optional, with an item: the caller's token, one per update_token call (the
--                  name of the view's receipt; without it a view is counted on every run)
-- returns: 1
-- Retry-safe: the login and last-seen writes are the same again; a view (ZINCRBY) is counted
-- once per call token, by a receipt kept under <login>:<call> only for views.
-- @include once
if #ARGV >= 5 and receipt(KEYS[1], ARGV[5]) then
  return 1
end
local t = redis.call('TIME')
-- Built as text: Lua numbers would round a microsecond timestamp to 14 digits.
local now = t[1] .. '.' .. string.format('%06d', tonumber(t[2]))
local token = ARGV[1]

redis.call('HSET', KEYS[1], token, ARGV[2])
redis.call('ZADD', KEYS[2], now, token)
if #ARGV >= 4 then
  local item = ARGV[4]
  redis.call('ZADD', KEYS[4], now, item)
  redis.call('ZREMRANGEBYRANK', KEYS[4], 0, -(tonumber(ARGV[3]) + 1))
  redis.call('ZINCRBY', KEYS[3], -1, item)
  if #ARGV >= 5 then
    return remember(KEYS[1], ARGV[5], 1)
  end
end
return 1
