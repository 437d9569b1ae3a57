-- Copy a followed user's latest statuses into the follower's home timeline, capped (Redis in
-- Action §8.3 follow_user, second MULTI). Only if the follow that read them is still the
-- latest call for the pair and still in force: a concurrent unfollow wins. Retry-safe from the
-- data: a second run adds the same members with the same scores, and the trim cuts the same
-- lowest ranks again, leaving the newest home_size of the same union.
-- KEYS[1] edges      HASH followed uid -> version of the pair (follower's side)
-- KEYS[2] following  ZSET followed uid -> follow time
-- KEYS[3] home       ZSET status id -> posted
-- ARGV[1] other uid  ARGV[2] version  ARGV[3] home_size  ARGV[4..] status id, posted, ...
-- returns: 1 if copied, 0 if the follow was superseded
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2]
    or not redis.call('ZSCORE', KEYS[2], ARGV[1]) then
  return 0
end
local batch = {}
for i = 4, #ARGV - 1, 2 do
  batch[#batch + 1] = ARGV[i + 1]
  batch[#batch + 1] = ARGV[i]
  if #batch == 1000 then
    redis.call('ZADD', KEYS[3], unpack(batch))
    batch = {}
  end
end
if #batch > 0 then
  redis.call('ZADD', KEYS[3], unpack(batch))
end
redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -tonumber(ARGV[3]) - 1)
return 1
