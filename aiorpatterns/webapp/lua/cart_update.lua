-- Set how many of an item a session's cart holds; 0 or less removes it (Redis in Action §2.2
-- add_to_cart, whose removal calls HREM, a command that does not exist). Only a live session
-- gets a cart, and the check is in the same step as the write, so clean_sessions never leaves
-- a cart behind for a token it removed.
-- KEYS[1] recent   ZSET token -> last seen
-- KEYS[2] cart     HASH item -> count, of this token
-- ARGV[1] token    ARGV[2] item    ARGV[3] count (a whole number)
-- returns: 1, or 0 (nothing written) if the token has no session
-- Retry-safe as it is: a second run sets the same count (or deletes what is gone) and answers
-- the same.
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return 0
end
if tonumber(ARGV[3]) <= 0 then
  redis.call('HDEL', KEYS[2], ARGV[2])
else
  redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
end
return 1
