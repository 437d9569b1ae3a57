-- Take every status of one author out of a home timeline, on the timeline's server (Redis in
-- Action §8.3.1 unfollow_user, on the sharded timelines of §10.3.3). Status ids name their
-- author ('<uid>:<n>'), so the author's statuses are found in the timeline itself, which holds
-- at most home_size entries. Retry-safe: a second run finds nothing left to remove.
-- KEYS[1] home    ZSET status id -> posted
-- ARGV[1] prefix  '<author uid>:'
-- returns: how many statuses were removed
local removed = 0
for _, status in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if string.sub(status, 1, #ARGV[1]) == ARGV[1] then
    removed = removed + redis.call('ZREM', KEYS[1], status)
  end
end
return removed
