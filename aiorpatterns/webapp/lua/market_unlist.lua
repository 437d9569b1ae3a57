-- Take a seller's listing off the market and back into the inventory (beyond the book, which
-- has no way back; the inverse of market_list).
-- KEYS[1] inventory  SET of the seller's items
-- KEYS[2] market     ZSET listing -> price
-- ARGV[1] item       the item id
-- ARGV[2] listing    the market member (item and seller, see market.py)
-- ARGV[3] call       the caller's token, one per unlist_item call (the receipt's name)
-- returns: 1 unlisted, 0 the item was not listed (sold or never listed)
-- Retry-safe by a receipt under <market>:<call>: a second run answers 1 as the first did
-- (the listing is gone, so it would answer 0); a refusal writes nothing.
-- @include once
local kept = receipt(KEYS[2], ARGV[3])
if kept then
  return kept
end
if redis.call('ZREM', KEYS[2], ARGV[2]) == 0 then
  return 0
end
redis.call('SADD', KEYS[1], ARGV[1])
return remember(KEYS[2], ARGV[3], 1)
