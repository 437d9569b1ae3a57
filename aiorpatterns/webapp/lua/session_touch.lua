-- Record a visit with a per-token login that expires on its own, and (if given) an item viewed
-- in a LIST (Redis in Action ch02-03 exercise answers: SETEX login:<token>, LREM + RPUSH + LTRIM
-- of viewed:<token>, EXPIRE; the chapter's form keeps a ZSET and needs a sweeper).
-- KEYS[1] login    STRING the user logged in with the token (expires: the session's TTL)
-- KEYS[2] viewed   LIST the items the token viewed, newest first (expires with the login)
-- KEYS[3] cart     HASH item -> count (expires with the login)
-- ARGV[1] user     the user
-- ARGV[2] ttl_s    how long the session lives after this visit
-- ARGV[3] history  how many items the list keeps
-- ARGV[4] item     the item viewed, or "" for none
-- returns: the list's length
-- Safe to run twice: the same user, the same item moved to the head once, the same TTL.
local user, ttl, history, item = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
redis.call('SET', KEYS[1], user, 'EX', ttl)
if item ~= '' then
  redis.call('LREM', KEYS[2], 0, item)
  redis.call('LPUSH', KEYS[2], item)
  redis.call('LTRIM', KEYS[2], 0, history - 1)
end
redis.call('EXPIRE', KEYS[2], ttl)
redis.call('EXPIRE', KEYS[3], ttl)
return redis.call('LLEN', KEYS[2])
