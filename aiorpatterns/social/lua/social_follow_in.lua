-- The followed user's side of a follow or unfollow, in one step on that user's hash tag
-- (Redis in Action §8.3 follow_user / unfollow_user). Applied only if its version is newer
-- than the last one applied for the pair, so concurrent follow/unfollow calls leave this side
-- agreeing with the follower's side; the followers ZSET and its counter move together, and
-- only when the ZSET changed. A follow returns the user's latest statuses for the home copy.
-- Retry-safe from the data: the same call sent twice finds its own version applied already and
-- answers "applied" again (with the statuses of a follow) without changing anything.
-- KEYS[1] user       HASH of the followed user (its counter ARGV[6])
-- KEYS[2] followers  ZSET follower uid (or list id) -> follow time
-- KEYS[3] edges      HASH follower uid (or list id) -> last version applied
-- KEYS[4] profile    ZSET status id -> posted
-- ARGV[1] follower uid  ARGV[2] 'follow' or 'unfollow'  ARGV[3] version
-- ARGV[4] follow time   ARGV[5] how many statuses to return (home_size)
-- ARGV[6] the counter: 'followers', or 'listed' when a list follows the user
-- returns: {1 if applied else 0, status id, posted, ...} (statuses only for an applied follow)
local version = tonumber(ARGV[3])
local applied = tonumber(redis.call('HGET', KEYS[3], ARGV[1]) or '0')
if version < applied then
  return {0}
end
-- Versions are unique per call of the pair: an equal one is this call, run again.
local again = version == applied
if not again then
  redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
end
if ARGV[2] == 'follow' then
  if not again and redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1]) == 1 then
    redis.call('HINCRBY', KEYS[1], ARGV[6], 1)
  end
  local out = redis.call('ZREVRANGE', KEYS[4], 0, tonumber(ARGV[5]) - 1, 'WITHSCORES')
  table.insert(out, 1, 1)
  return out
end
if not again and redis.call('ZREM', KEYS[2], ARGV[1]) == 1 then
  redis.call('HINCRBY', KEYS[1], ARGV[6], -1)
end
return {1}
