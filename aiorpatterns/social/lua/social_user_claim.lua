-- Claim a login for a new user and take its id, in one step (Redis in Action §8.1.1
-- create_user, which needs a lock around HGET, INCR and HSET; HSETNX-style here, no lock).
-- Retry-safe by a receipt under the caller's token: the same claim sent twice answers the id
-- it took the first time, not "taken" (the login is then its own).
-- KEYS[1] logins  HASH folded login -> user id (also the base of the receipt)
-- KEYS[2] seq     STRING the last user id handed out
-- ARGV[1] login   the login, case-folded
-- ARGV[2] token   the caller's, one per create_user call
-- returns: the new user id, or 0 if the login is taken (no id is consumed then)
-- @include once
local kept = receipt(KEYS[1], ARGV[2])
if kept then
  return kept
end
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  return 0
end
local uid = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], ARGV[1], uid)
return remember(KEYS[1], ARGV[2], uid)
