-- Delete a status: its record, its profile and own home entries and the post counter in one
-- step (Redis in Action §8.4 delete_status, which needs a lock around a check and a MULTI).
-- Only the author can: the status is looked up in the author's own HASH. Retry-safe by a
-- receipt under the caller's token: a delete sent twice answers 1 again (a second HDEL alone
-- would answer 0, "no such status") and decrements the counter once.
-- KEYS[1] user      HASH of the author
-- KEYS[2] statuses  HASH status id -> JSON record
-- KEYS[3] profile   ZSET status id -> posted
-- KEYS[4] home      ZSET status id -> posted
-- ARGV[1] status id  ARGV[2] token, the caller's, one per delete_status call
-- returns: 1 if the status was deleted, 0 if the author has no such status
-- @include once
-- @include status_record
local kept = receipt(KEYS[1], ARGV[2])
if kept then
  return kept
end
if not erase_status(KEYS[1], KEYS[2], ARGV[1]) then
  return 0
end
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
return remember(KEYS[1], ARGV[2], 1)
