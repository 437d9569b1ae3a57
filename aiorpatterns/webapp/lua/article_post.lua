-- Publish an article: its text, first vote (the poster's), score and posting time in one step
-- (Redis in Action §1.3.2 post_article, whose five writes are separate commands).
-- KEYS[1] posts      HASH id -> JSON {title, link, poster}
-- KEYS[2] votes      HASH id -> up-votes
-- KEYS[3] downvotes  HASH id -> down-votes
-- KEYS[4] score      ZSET id -> posted + weight * (up - down)
-- KEYS[5] time       ZSET id -> posted (server time, seconds)
-- KEYS[6] voters     HASH user -> '1' (up) or '-1' (down), for this article
-- ARGV[1] id         the new article's id (from INCR)
-- ARGV[2] meta       the JSON text of {title, link, poster}
-- ARGV[3] poster     the user who posts (and so votes for) it
-- ARGV[4] window     how long votes are taken (seconds)
-- ARGV[5] weight     how much one vote moves the score
-- returns: the posting time (server clock, text)
-- Retry-safe by the id (taken by the caller before the step): a second run finds the article
-- already written and answers its posting time, leaving its votes and score as they are.
local posted = redis.call('ZSCORE', KEYS[5], ARGV[1])
if posted and redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  return posted
end
local t = redis.call('TIME')
-- Built as text: a Lua number would round a microsecond timestamp to 14 digits.
local now = t[1] .. '.' .. string.format('%06d', tonumber(t[2]))
local id = ARGV[1]
redis.call('HSET', KEYS[1], id, ARGV[2])
redis.call('HSET', KEYS[2], id, 1)
redis.call('HSET', KEYS[6], ARGV[3], '1')
-- Whole seconds, rounded up: a voter record must outlive the voting window.
redis.call('EXPIREAT', KEYS[6], math.floor(tonumber(t[1]) + tonumber(ARGV[4])) + 1)
redis.call('ZADD', KEYS[5], now, id)
redis.call('ZADD', KEYS[4], string.format('%.17g', tonumber(now) + tonumber(ARGV[5])), id)
return now
