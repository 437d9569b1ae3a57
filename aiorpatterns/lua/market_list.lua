-- List an item of a seller's inventory on the market (Redis in Action §4.4.2 list_item, §11.3.2).
-- The WATCH/MULTI loop of §4.4.2 becomes one atomic step: nothing to retry.
-- KEYS[1] inventory  SET of the seller's items
-- KEYS[2] market     ZSET listing -> price
-- ARGV[1] item       the item id
-- ARGV[2] listing    the market member (item and seller, see market.py)
-- ARGV[3] price      a whole number
-- returns: 1 listed, 0 the item is not in the seller's inventory
if redis.call('SREM', KEYS[1], ARGV[1]) == 0 then
  return 0
end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
return 1
