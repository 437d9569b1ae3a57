-- Keep the most viewed items and halve their counts, in one step (Redis in Action §2.5
-- rescale_viewed: ZREMRANGEBYRANK then ZINTERSTORE with a weight, two commands in the book).
-- KEYS[1] viewed   ZSET item -> minus its (decayed) number of views
-- KEYS[2] login    HASH of the store's logins: only the base of this step's receipt
-- ARGV[1] keep     how many items stay (the most viewed)
-- ARGV[2] factor   what the remaining counts are multiplied by
-- ARGV[3] call     the caller's token, one per rescale_viewed call (the receipt's name)
-- returns: how many items remain
-- Retry-safe by a receipt under <login>:<call>: a second run would multiply twice.
-- @include once
local kept = receipt(KEYS[2], ARGV[3])
if kept then
  return kept
end
redis.call('ZREMRANGEBYRANK', KEYS[1], tonumber(ARGV[1]), -1)
redis.call('ZINTERSTORE', KEYS[1], 1, KEYS[1], 'WEIGHTS', ARGV[2])
return remember(KEYS[2], ARGV[3], redis.call('ZCARD', KEYS[1]))
