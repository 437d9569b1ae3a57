-- Vote for (or against) an article, at most once per user, while voting is open (Redis in
-- Action §1.3.1 article_vote and the §1.4 down-vote exercise). The voter record, the vote count
-- and the score change in one step: the book's SADD, ZINCRBY and HINCRBY are separate commands,
-- so a crash in between records a vote that is never counted; and an unknown article is an
-- answer here, where the book compares None with a number (TypeError).
-- KEYS[1] votes      HASH id -> up-votes
-- KEYS[2] downvotes  HASH id -> down-votes
-- KEYS[3] score      ZSET id -> posted + weight * (up - down)
-- KEYS[4] time       ZSET id -> posted (server time, seconds)
-- KEYS[5] voters     HASH user -> '1' or '-1', for this article
-- ARGV[1] id         the article
-- ARGV[2] user       the voter
-- ARGV[3] direction  '1' (up) or '-1' (down)
-- ARGV[4] window     how long after posting votes are taken (seconds)
-- ARGV[5] weight     how much one vote moves the score
-- ARGV[6] call       the caller's token, one per article_vote call (the receipt's name)
-- returns: 'voted', 'changed' (the user's earlier vote was the other way and is replaced),
-- 'already' (the same vote again: nothing changes), 'closed' (voting is over) or 'missing'
-- Retry-safe by a receipt under <voters>:<call> for a counted vote: a second run answers
-- 'voted' or 'changed' as the first did, not 'already' (refusals write nothing to repeat).
-- @include once
local kept = receipt(KEYS[5], ARGV[6])
if kept then
  return kept
end
local id, user, direction = ARGV[1], ARGV[2], ARGV[3]
local posted = redis.call('ZSCORE', KEYS[4], id)
if not posted then
  return 'missing'
end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local window = tonumber(ARGV[4])
if tonumber(posted) + window < now then
  return 'closed'
end
local before = redis.call('HGET', KEYS[5], user)
if before == direction then
  return 'already'
end
local weight = tonumber(ARGV[5])
local counter, other, sign = KEYS[1], KEYS[2], 1
if direction == '-1' then
  counter, other, sign = KEYS[2], KEYS[1], -1
end
redis.call('HSET', KEYS[5], user, direction)
if redis.call('TTL', KEYS[5]) < 0 then
  redis.call('EXPIREAT', KEYS[5], math.floor(tonumber(posted) + window) + 1)
end
redis.call('HINCRBY', counter, id, 1)
if before then
  redis.call('HINCRBY', other, id, -1)
  redis.call('ZINCRBY', KEYS[3], string.format('%.17g', 2 * sign * weight), id)
  return remember(KEYS[5], ARGV[6], 'changed')
end
redis.call('ZINCRBY', KEYS[3], string.format('%.17g', sign * weight), id)
return remember(KEYS[5], ARGV[6], 'voted')
