-- Set an item's count in a live session's cart, expiring with the session (Redis in Action
-- ch03 exercise answer for §2.2 add_to_cart: the cart takes the login's TTL; its hrem is HDEL).
-- KEYS[1] login    STRING the token's user (absent: no live session)
-- KEYS[2] cart     HASH item -> count
-- ARGV[1] item     the item
-- ARGV[2] count    the count; <= 0 removes the item
-- returns: 1 if the session is live (and the cart updated), else 0 (nothing written)
-- Safe to run twice: it sets (or removes) the same count.
local ttl = redis.call('TTL', KEYS[1])
if ttl == -2 then return 0 end
if tonumber(ARGV[2]) <= 0 then
  redis.call('HDEL', KEYS[2], ARGV[1])
else
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
end
if ttl > 0 then redis.call('EXPIRE', KEYS[2], ttl) end
return 1
