-- Read the next batch of a ZSET after an exclusive (score, member) cursor (Redis in Action §8.4
-- syndicate_status / clean_timelines, whose inclusive score cursor re-reads the boundary member
-- and never ends when more than a batch of members share one score). Members with equal scores
-- are ordered by member bytes, so (score, member) is a total order: the
-- batch starts right after the cursor's rank, found by ZRANK when the cursor member is still
-- there with that score, else by a binary search over the run of members with that score.
-- KEYS[1] set       ZSET to page through (followers; following for a refill)
-- KEYS[2] statuses  HASH of the author's statuses, the guard of the status being paged for
-- ARGV[1] score     the cursor's score ('' to start at the beginning)
-- ARGV[2] member    the cursor's member
-- ARGV[3] count     batch size
-- ARGV[4] status id ARGV[5] '1' if the status must exist (fan-out), '0' if it must not (clean)
-- Read-only, so safe to run twice.
-- returns: flat {member, score, ...} (empty when the guard fails: nothing left to do)
local exists = redis.call('HEXISTS', KEYS[2], ARGV[4])
if tostring(exists) ~= ARGV[5] then
  return {}
end
-- Byte order, as the ZSET orders equal scores (Lua's '<' follows the server's locale).
local function after(probe, cursor)
  for i = 1, math.min(#probe, #cursor) do
    local x, y = string.byte(probe, i), string.byte(cursor, i)
    if x ~= y then
      return x > y
    end
  end
  return #probe > #cursor
end
local key, score, member = KEYS[1], ARGV[1], ARGV[2]
local start = 0
if score ~= '' then
  local current = redis.call('ZSCORE', key, member)
  if current and tonumber(current) == tonumber(score) then
    start = redis.call('ZRANK', key, member) + 1
  else
    local lo = redis.call('ZCOUNT', key, '-inf', '(' .. score)
    local hi = lo + redis.call('ZCOUNT', key, score, score)
    while lo < hi do
      local mid = math.floor((lo + hi) / 2)
      local probe = redis.call('ZRANGE', key, mid, mid)[1]
      if after(probe, member) then hi = mid else lo = mid + 1 end
    end
    start = lo
  end
end
return redis.call('ZRANGE', key, start, start + tonumber(ARGV[3]) - 1, 'WITHSCORES')
