-- Create a user list (Redis in Action §8.3 exercise create_user_list, which consumes a list
-- id even when the owner does not exist). The list's number is the owner's next one, given by
-- the caller (its key must be declared): the call fails, to be retried, if another list took it.
-- Retry-safe by a receipt under the caller's token: the same call sent twice answers 1 again
-- (without it the second run sees its own number taken, and the caller makes a second list).
-- KEYS[1] user   HASH of the owner (the 'list_seq' counter)
-- KEYS[2] list   HASH {name, created, following} of list number ARGV[1]
-- KEYS[3] lists  ZSET list number -> created, the owner's lists
-- ARGV[1] n      the number to create (list_seq + 1 as the caller read it)
-- ARGV[2] name
-- ARGV[3] token  the caller's, one per create_list call
-- returns: 1 if created, 0 if the number was taken meanwhile, false if there is no such owner
-- @include once
local kept = receipt(KEYS[1], ARGV[3])
if kept then
  return kept
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  return false
end
if tonumber(redis.call('HGET', KEYS[1], 'list_seq') or '0') + 1 ~= tonumber(ARGV[1]) then
  return 0
end
redis.call('HSET', KEYS[1], 'list_seq', ARGV[1])
local t = redis.call('TIME')
local now = t[1] .. '.' .. string.format('%06d', tonumber(t[2]))
redis.call('HSET', KEYS[2], 'name', ARGV[2], 'created', now, 'following', 0)
redis.call('ZADD', KEYS[3], now, ARGV[1])
return remember(KEYS[1], ARGV[3], 1)
