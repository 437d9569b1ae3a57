-- The follower's side of a follow or unfollow, in one step on the follower's hash tag (Redis in
-- Action §8.3 follow_user / unfollow_user, whose two MULTIs span both users and can leave the
-- counters or the home timeline stale). The following ZSET and its counter move together, and
-- only when the ZSET changed. Every call bumps the pair's version, which orders the followed
-- user's side (social_follow_in) and the home copy (social_home_copy): whatever order
-- concurrent calls reach the other node in, the last call made here wins there too.
-- An unfollow also removes every status of the unfollowed user from the home timeline (the
-- status id starts with its author's id), not only the latest ones. Retry-safe by a receipt
-- under the caller's token: the same call sent twice answers what the first run answered (its
-- version and "changed"), and bumps the version and the counter once.
-- KEYS[1] user       HASH of the follower, a user or a list (the 'following' counter)
-- KEYS[2] following  ZSET followed uid -> follow time
-- KEYS[3] edges      HASH followed uid -> version of the pair
-- KEYS[4] home       ZSET status id -> posted (a home timeline, or a list's timeline)
-- ARGV[1] other uid  ARGV[2] 'follow' or 'unfollow'  ARGV[3] token, the caller's, one per call
-- returns: {1 if the ZSET changed else 0, version, follow time ('' after an unfollow)},
--          or false if the follower does not exist
-- @include once
local kept = receipt(KEYS[1], ARGV[3])
if kept then
  return kept
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  return false
end
local other = ARGV[1]
local changed, since = 0, ''
if ARGV[2] == 'follow' then
  local t = redis.call('TIME')
  local now = t[1] .. '.' .. string.format('%06d', tonumber(t[2]))
  changed = redis.call('ZADD', KEYS[2], 'NX', now, other)
  if changed == 1 then
    redis.call('HINCRBY', KEYS[1], 'following', 1)
  end
  since = redis.call('ZSCORE', KEYS[2], other)
else
  changed = redis.call('ZREM', KEYS[2], other)
  if changed == 1 then
    redis.call('HINCRBY', KEYS[1], 'following', -1)
  end
  local prefix = other .. ':'
  local stale = {}
  for _, sid in ipairs(redis.call('ZRANGE', KEYS[4], 0, -1)) do
    if string.sub(sid, 1, #prefix) == prefix then
      stale[#stale + 1] = sid
      if #stale == 500 then
        redis.call('ZREM', KEYS[4], unpack(stale))
        stale = {}
      end
    end
  end
  if #stale > 0 then
    redis.call('ZREM', KEYS[4], unpack(stale))
  end
end
local version = redis.call('HINCRBY', KEYS[3], other, 1)
return remember(KEYS[1], ARGV[3], {changed, version, since})
