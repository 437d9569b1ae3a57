-- Buy a listed item: pay the seller, take the item (Redis in Action §4.4.3 purchase_item,
-- §6.2 purchase_item_with_lock, §11.3.2 purchase_item_lua). Checks and writes run as one step,
-- so no WATCH retry and no lock; unlike §11.3.2 the buyer names the price it expects (the
-- book's ``lprice`` of §4.4.3), so a relisted item is never bought at a price nobody agreed to.
-- Every check runs before the first write: a refusal changes nothing.
-- KEYS[1] market     ZSET listing -> price
-- KEYS[2] buyer      HASH of the buyer (field 'funds')
-- KEYS[3] seller     HASH of the seller (field 'funds')
-- KEYS[4] inventory  SET of the buyer's items
-- ARGV[1] listing    the market member (item and seller)
-- ARGV[2] item       the item id
-- ARGV[3] price      the price the buyer expects (a whole number)
-- ARGV[4] call       the caller's token, one per purchase_item call (the receipt's name)
-- returns: 'bought', 'gone' (not listed), 'price' (listed at another price) or 'funds'; an
-- error, before any write, if a 'funds' field is not a whole number of at most 2^53
-- Retry-safe by a receipt under <market>:<call> for a purchase: a second run answers 'bought'
-- as the first did (the listing is gone, so it would answer 'gone'); refusals write nothing.
-- @include once
local MAX = 9007199254740992

-- A funds field as a number (missing: 0), or nil if it is no whole number within +-2^53.
local function funds_of(key)
  local value = redis.call('HGET', key, 'funds') or '0'
  local n = string.match(value, '^-?%d+$') and tonumber(value)
  if n and math.abs(n) <= MAX then
    return n
  end
end

local kept = receipt(KEYS[1], ARGV[4])
if kept then
  return kept
end
local price = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not price then
  return 'gone'
end
if price ~= ARGV[3] then
  return 'price'
end
local funds, earned = funds_of(KEYS[2]), funds_of(KEYS[3])
if not funds or not earned or earned + tonumber(price) > MAX then
  return redis.error_reply('FUNDS the funds of the buyer or the seller are not whole numbers within 2^53')
end
if funds < tonumber(price) then
  return 'funds'
end
redis.call('HINCRBY', KEYS[2], 'funds', '-' .. price)
redis.call('HINCRBY', KEYS[3], 'funds', price)
redis.call('SADD', KEYS[4], ARGV[2])
redis.call('ZREM', KEYS[1], ARGV[1])
return remember(KEYS[1], ARGV[4], 'bought')
