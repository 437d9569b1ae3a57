-- Follow or unfollow on the server of the pair (Redis in Action §10.3.3 follow_user over
-- KeyDataShardedConnection): both ZSET entries of the edge and both users' counts on this
-- server change in one step. The book writes the entries in a MULTI after a separate ZSCORE
-- check, then moves the counters on another server in another step.
-- Retry-safe: the second run of a follow finds the entry and changes nothing; a call that
-- changed the edge keeps that answer under the caller's token, so the same call sent again
-- still answers 1, not 0.
-- KEYS[1] following  ZSET, this server's piece of the follower's following list
-- KEYS[2] followers  ZSET, this server's piece of the followed user's followers list
-- KEYS[3] counts     HASH 'following:<uid>' / 'followers:<uid>' -> entries on this server
-- ARGV[1] uid        the follower   ARGV[2] other  the followed user
-- ARGV[3] mode       'follow' or 'unfollow'
-- ARGV[4] token      the caller's, one per call (the receipt's name)
-- returns: 1 if the edge changed, 0 if it already was so
-- @include once

local following, followers = 'following:' .. ARGV[1], 'followers:' .. ARGV[2]
if ARGV[3] == 'follow' then
  if redis.call('ZSCORE', KEYS[1], ARGV[2]) then
    return receipt(KEYS[3], ARGV[4]) or 0
  end
  local t = redis.call('TIME')
  local now = t[1] .. '.' .. string.format('%06d', tonumber(t[2]))
  redis.call('ZADD', KEYS[1], now, ARGV[2])
  redis.call('ZADD', KEYS[2], now, ARGV[1])
  redis.call('HINCRBY', KEYS[3], following, 1)
  redis.call('HINCRBY', KEYS[3], followers, 1)
else
  if redis.call('ZREM', KEYS[1], ARGV[2]) == 0 then
    return receipt(KEYS[3], ARGV[4]) or 0
  end
  redis.call('ZREM', KEYS[2], ARGV[1])
  if redis.call('HINCRBY', KEYS[3], following, -1) == 0 then
    redis.call('HDEL', KEYS[3], following)
  end
  if redis.call('HINCRBY', KEYS[3], followers, -1) == 0 then
    redis.call('HDEL', KEYS[3], followers)
  end
end
return remember(KEYS[3], ARGV[4], 1)
