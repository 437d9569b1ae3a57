-- List an item of a seller's inventory on the market (Redis in Action §4.4.2 list_item, §11.3.2).
-- The WATCH/MULTI loop of §4.4.2 becomes one atomic step: nothing to retry.
-- KEYS[1] inventory  SET of the seller's items
-- KEYS[2] market     ZSET listing -> price
-- ARGV[1] item       the item id
-- ARGV[2] listing    the market member (item and seller, see market.py)
-- ARGV[3] price      a whole number
-- ARGV[4] call       the caller's token, one per list_item call (the receipt's name)
-- returns: 1 listed, 0 the item is not in the seller's inventory
-- Retry-safe by a receipt under <market>:<call>: a second run answers 1 as the first did
-- (the item has left the inventory, so it would answer 0); a refusal writes nothing.
-- @include once
local kept = receipt(KEYS[2], ARGV[4])
if kept then
  return kept
end
if redis.call('SREM', KEYS[1], ARGV[1]) == 0 then
  return 0
end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
return remember(KEYS[2], ARGV[4], 1)
