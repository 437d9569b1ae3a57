-- Log out the oldest tokens while there are more than a limit, with their histories and carts
-- (Redis in Action §2.1 clean_sessions, §2.2 clean_full_sessions). The caller read the oldest
-- tokens and when each was last seen; a token seen again since then is kept: the book deletes
-- what it read, so a user active in between is logged out and loses the cart.
-- KEYS[1] login    HASH token -> user
-- KEYS[2] recent   ZSET token -> last seen
-- KEYS[3..] for each token, two keys: its history ZSET and its cart HASH
-- ARGV[1] limit    how many tokens may stay
-- ARGV[2..] for each token, in KEYS order: the token and its last-seen score as read
-- returns: how many tokens were removed
local limit = tonumber(ARGV[1])
local removed = 0
for i = 2, #ARGV, 2 do
  if redis.call('ZCARD', KEYS[2]) <= limit then
    break
  end
  local token = ARGV[i]
  local seen = redis.call('ZSCORE', KEYS[2], token)
  if seen and tonumber(seen) == tonumber(ARGV[i + 1]) then
    redis.call('DEL', KEYS[i + 1], KEYS[i + 2])
    redis.call('HDEL', KEYS[1], token)
    redis.call('ZREM', KEYS[2], token)
    removed = removed + 1
  end
end
return removed
