-- Log out the oldest tokens while there are more than a limit, with their histories and carts
-- (Redis in Action §2.1 clean_sessions, §2.2 clean_full_sessions). The caller read the oldest
-- tokens and when each was last seen; a token seen again since then is kept: the book deletes
-- what it read, so a user active in between is logged out and loses the cart.
-- KEYS[1] login    HASH token -> user
-- KEYS[2] recent   ZSET token -> last seen
-- KEYS[3..] for each token, two keys: its history ZSET and its cart HASH
-- ARGV[1] call     the caller's token, one per step (the receipt's name)
-- ARGV[2] limit    how many tokens may stay
-- ARGV[3..] for each token, in KEYS order: the token and its last-seen score as read
-- returns: how many tokens were removed
-- Retry-safe by a receipt under <login>:<call>: a second run answers the first run's count
-- (the tokens it removed are gone, so it would count 0 and stop the caller's loop early).
-- @include once
local kept = receipt(KEYS[1], ARGV[1])
if kept then
  return kept
end
local limit = tonumber(ARGV[2])
local removed = 0
for i = 3, #ARGV, 2 do
  if redis.call('ZCARD', KEYS[2]) <= limit then
    break
  end
  local token = ARGV[i]
  local seen = redis.call('ZSCORE', KEYS[2], token)
  if seen and tonumber(seen) == tonumber(ARGV[i + 1]) then
    redis.call('DEL', KEYS[i], KEYS[i + 1])
    redis.call('HDEL', KEYS[1], token)
    redis.call('ZREM', KEYS[2], token)
    removed = removed + 1
  end
end
if removed == 0 then
  return 0  -- nothing written: a second run answers 0 as well
end
return remember(KEYS[1], ARGV[1], removed)
