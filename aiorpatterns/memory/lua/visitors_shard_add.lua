-- Add one visitor id to its SET shard on a shard server (Redis in Action §10.3.2 count_visit,
-- whose shards sit on several servers and whose counter sits on another). The reply carries
-- the shard's size, so the counter server can take it as a total (visitors_total.lua) instead
-- of an INCR that a crash between the two servers would lose or a retry would repeat.
-- Retry-safe: SADD counts an id once; a call that found a new visitor keeps that answer under
-- the caller's token, so the same call sent again still answers "new" (and the caller goes on
-- to report the shard's size, which is safe to report twice).
-- KEYS[1] shard  SET of 60-bit visitor ids
-- ARGV[1] id     the visitor id, decimal text
-- ARGV[2] ttl    retention in whole seconds, set when the shard is created
-- ARGV[3] token  the caller's token for this visit (its receipt)
-- returns: {1, size} for a new visitor, {0, size} for one seen before
-- @include once

if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then
  local kept = receipt(KEYS[1], ARGV[3])
  if kept then return kept end
  return {0, redis.call('SCARD', KEYS[1])}
end
local size = redis.call('SCARD', KEYS[1])
if size == 1 then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return remember(KEYS[1], ARGV[3], {1, size})
