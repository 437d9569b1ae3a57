-- Read one page of articles with their data in one round trip (Redis in Action §1.3.2
-- get_articles, which makes one HGETALL per article, and §1.3.3 get_group_articles). For a
-- group, the group's ordered cache is built here if it is missing: ZINTERSTORE and its expiry
-- in the same step, so a crash never leaves a cache that never expires, and concurrent readers
-- never rebuild it at once (the book's EXISTS, ZINTERSTORE, EXPIRE are three commands).
-- KEYS[1] source     ZSET to page through: the site's score/time ZSET, or a group's cache
-- KEYS[2] posts      HASH id -> JSON {title, link, poster}
-- KEYS[3] votes      HASH id -> up-votes
-- KEYS[4] downvotes  HASH id -> down-votes
-- KEYS[5] score      ZSET id -> score
-- KEYS[6] time       ZSET id -> posted
-- KEYS[7..] optional, for a group: KEYS[7] the group's SET of ids, KEYS[8] the site's ZSET
--           the cache KEYS[1] is built from
-- ARGV[1] start      ARGV[2] stop (ranks, highest first)
-- ARGV[3] ttl_ms     how long a group's cache lives (only with KEYS[7..8])
-- returns: a flat list, six entries per article: id, meta JSON, up, down, score, posted
-- Retry-safe as it is: a second run finds the group's cache built and reads the same page.
if #KEYS >= 8 and redis.call('EXISTS', KEYS[1]) == 0 then
  -- Weight 0 for the SET: the cache holds the site's scores exactly.
  redis.call('ZINTERSTORE', KEYS[1], 2, KEYS[7], KEYS[8], 'WEIGHTS', 0, 1)
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
local ids = redis.call('ZREVRANGE', KEYS[1], ARGV[1], ARGV[2])
local out = {}
for _, id in ipairs(ids) do
  local meta = redis.call('HGET', KEYS[2], id)
  if meta then
    out[#out + 1] = id
    out[#out + 1] = meta
    out[#out + 1] = redis.call('HGET', KEYS[3], id) or '0'
    out[#out + 1] = redis.call('HGET', KEYS[4], id) or '0'
    out[#out + 1] = redis.call('ZSCORE', KEYS[5], id) or '0'
    out[#out + 1] = redis.call('ZSCORE', KEYS[6], id) or '0'
  end
end
return out
