-- Finish a claimed row: store its fresh copy and schedule the next refresh, or give the claim
-- back (Redis in Action §2.4 cache_rows: ZADD schedule and SET inv:, unconditional there).
-- Nothing happens unless the worker still holds the claim: a worker whose lease ran out, or
-- whose row was unscheduled meanwhile, never overwrites a newer copy or revives the row.
-- KEYS[1] delay    ZSET row -> refresh interval (seconds)
-- KEYS[2] schedule ZSET row -> when it is next due
-- KEYS[3] claims   HASH row -> token of the worker refreshing it
-- KEYS[4] data     HASH row -> cached JSON
-- ARGV[1] row      (empty: the row the token's claim receipt names, for a worker whose claim
--                  reply was lost; see cache_row_claim)
-- ARGV[2] token
-- ARGV[3] mode     'store' (ARGV[4] is the JSON), 'retry' (due again in ARGV[5] seconds, at
--                  most the delay), 'release' (due now) or 'drop' (the row no longer exists)
-- ARGV[4] json     ARGV[5] retry
-- returns: 1 if done, 0 if the claim was no longer the worker's
-- Retry-safe by the token: a second run finds the claim no longer the worker's and does
-- nothing (the caller does not read the reply).
-- @include once
local row = ARGV[1]
if row == '' then
  local kept = receipt(KEYS[3], ARGV[2])
  if not kept or kept[1] ~= 'claimed' then
    return 0
  end
  row = kept[2]
end
-- The worker is done with this claim: its receipt has nothing left to answer.
redis.call('DEL', KEYS[3] .. ':' .. ARGV[2])
if redis.call('HGET', KEYS[3], row) ~= ARGV[2] then
  return 0
end
redis.call('HDEL', KEYS[3], row)
local mode = ARGV[3]
local delay = tonumber(redis.call('ZSCORE', KEYS[1], row) or '0')
if mode == 'drop' or delay <= 0 then
  redis.call('ZREM', KEYS[1], row)
  redis.call('ZREM', KEYS[2], row)
  redis.call('HDEL', KEYS[4], row)
  return 1
end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local after = 0
if mode == 'store' then
  redis.call('HSET', KEYS[4], row, ARGV[4])
  after = delay
elseif mode == 'retry' then
  after = math.min(tonumber(ARGV[5]), delay)
end
redis.call('ZADD', KEYS[2], string.format('%.6f', now + after), row)
return 1
