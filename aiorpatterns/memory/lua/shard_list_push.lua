-- Push items onto one end of a sharded list (Redis in Action §11.4 sharded_push_lua).
-- KEYS[1] meta     HASH {first, last, count}: the end shards' numbers and the number of items
-- KEYS[2] signal   LIST of wake-up tokens for blocked poppers (short-lived)
-- KEYS[3..] shards LISTs: the caller's guess of the end shard, then the shards beyond it
-- ARGV[1] side     'left' or 'right'
-- ARGV[2] guess    the number of the end shard the caller assumed (KEYS[3])
-- ARGV[3] chunk    most items one shard holds
-- ARGV[4] ttl_ms   how long wake-up tokens live
-- ARGV[5] token    the caller's token for this call (its receipt: see _once.lua)
-- ARGV[6..] items  in push order (LPUSH/RPUSH semantics)
-- returns: {pushed, first, last, length}; pushed is -1 (nothing pushed) when the guess was
-- wrong, and the caller retries with the ends returned.
-- Safe to run twice: a call that pushed keeps its reply under the token, so the same call
-- re-sent (a client retry) answers it again and pushes nothing more.
-- @include once
local left = ARGV[1] == 'left'
local kept = receipt(KEYS[1], ARGV[5])
if kept then return kept end
local ends = redis.call('HMGET', KEYS[1], 'first', 'last', 'count')
local first = tonumber(ends[1] or '0')
local last = tonumber(ends[2] or '0')
local cur = left and first or last
if cur ~= tonumber(ARGV[2]) then
  return {-1, first, last, tonumber(ends[3] or '0')}
end
local step = left and -1 or 1
local cmd = left and 'LPUSH' or 'RPUSH'
local chunk = tonumber(ARGV[3])
local n = #ARGV
local i = 6
local k = 3
while i <= n do
  local room = chunk - redis.call('LLEN', KEYS[k])
  if room > 0 then
    local j = math.min(n, i + room - 1)
    while i <= j do
      -- unpack() is bounded by Lua's C stack: push in slices.
      local stop = math.min(j, i + 999)
      redis.call(cmd, KEYS[k], unpack(ARGV, i, stop))
      i = stop + 1
    end
  end
  if i <= n then
    -- Only shards the caller declared may be touched: it pushes the rest in another call.
    if k == #KEYS then break end
    k = k + 1
    cur = cur + step
  end
end
local pushed = i - 6
if left then first = cur else last = cur end
local length = redis.call('HINCRBY', KEYS[1], 'count', pushed)
redis.call('HSET', KEYS[1], 'first', first, 'last', last)
-- One token per item (up to 64) wakes as many blocked poppers; they re-check by popping.
local tokens = {}
for t = 1, math.min(pushed, 64) do tokens[t] = '1' end
if #tokens > 0 then
  redis.call('RPUSH', KEYS[2], unpack(tokens))
  redis.call('LTRIM', KEYS[2], -length, -1)
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
end
return remember(KEYS[1], ARGV[5], {pushed, first, last, length})
