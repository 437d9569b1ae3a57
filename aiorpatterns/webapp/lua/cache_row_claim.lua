-- Claim the next due row for one worker (Redis in Action §2.4 cache_rows, which has no claim:
-- every worker refreshes the same head row). The claimed row's schedule moves to the end of
-- its lease, so no other worker takes it until the lease ends (its worker died or hung). A row
-- scheduled without a delay (the two ZSETs diverged: the book raises TypeError) is dropped.
-- KEYS[1] delay    ZSET row -> refresh interval (seconds)
-- KEYS[2] schedule ZSET row -> when it is next due; a claimed row: lease end
-- KEYS[3] claims   HASH row -> token of the worker refreshing it
-- KEYS[4] data     HASH row -> cached JSON
-- ARGV[1] token    the worker's token for this claim
-- ARGV[2] lease    how long the claim lasts (seconds)
-- returns: {'claimed', row} or {'idle', seconds until the next row is due, '-1' if none}
-- Retry-safe by a receipt under the token, kept while the claim lasts (cache_row_store drops
-- it): a second run answers the row the first claimed instead of claiming another, and a
-- worker whose claim reply was lost releases by token alone (cache_row_store with no row).
-- @include once
local kept = receipt(KEYS[3], ARGV[1])
if kept then
  return kept
end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
for _ = 1, 100 do
  local head = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  if #head == 0 then
    return {'idle', '-1'}
  end
  local row, due = head[1], tonumber(head[2])
  if due > now then
    return {'idle', string.format('%.6f', due - now)}
  end
  local delay = tonumber(redis.call('ZSCORE', KEYS[1], row) or '0')
  if delay > 0 then
    redis.call('ZADD', KEYS[2], string.format('%.6f', now + tonumber(ARGV[2])), row)
    redis.call('HSET', KEYS[3], row, ARGV[1])
    return remember(KEYS[3], ARGV[1], {'claimed', row})
  end
  redis.call('ZREM', KEYS[1], row)
  redis.call('ZREM', KEYS[2], row)
  redis.call('HDEL', KEYS[3], row)
  redis.call('HDEL', KEYS[4], row)
end
return {'idle', '0'}
