-- Pop one item from one end of a sharded list (Redis in Action §11.4 sharded_list_pop_lua).
-- KEYS[1] meta     HASH {first, last, count}
-- KEYS[2] signal   LIST of wake-up tokens (deleted once the list is empty)
-- KEYS[3] shard    LIST: the caller's guess of the end shard
-- ARGV[1] side     'left' or 'right'
-- ARGV[2] guess    the number of the end shard the caller assumed (KEYS[3])
-- ARGV[3] token    the caller's token for this pop (its receipt: see _once.lua)
-- ARGV[4] mode     'pop', or 'abandon': the caller gave up on this pop (cancelled, or its reply
--                  was lost); answer what the pop took, if it took something, so the caller
--                  can push it back, else refuse the pop to come (a tombstone receipt)
-- returns: {1, item, first, last}; {0, first, last} when the list is empty; {-1, first, last}
-- when the guess was wrong (nothing popped: retry with the ends returned).
-- Safe to run twice: a pop that took an item keeps its reply under the token, so the same pop
-- re-sent (a client retry) answers that item again and pops nothing more; a pop that took
-- nothing wrote nothing.
-- Invariant kept by push and pop: every shard from first to last holds items unless the whole
-- list is empty, and shards outside that range are empty. So the end shard is empty only when
-- the list is, and a pop needs no other shard.
-- @include once
local left, token = ARGV[1] == 'left', ARGV[3]
local kept = receipt(KEYS[1], token)
if kept then return kept end
local ends = redis.call('HMGET', KEYS[1], 'first', 'last')
local first = tonumber(ends[1] or '0')
local last = tonumber(ends[2] or '0')
if ARGV[4] == 'abandon' then
  return remember(KEYS[1], token, {0, first, last})
end
local cur = left and first or last
if cur ~= tonumber(ARGV[2]) then
  return {-1, first, last}
end
local item = redis.call(left and 'LPOP' or 'RPOP', KEYS[3])
if not item then
  return {0, first, last}
end
local length = redis.call('HINCRBY', KEYS[1], 'count', -1)
if length <= 0 then
  redis.call('DEL', KEYS[1], KEYS[2])
  first, last = 0, 0
elseif redis.call('LLEN', KEYS[3]) == 0 then
  if left then
    first = first + 1
    redis.call('HSET', KEYS[1], 'first', first)
  else
    last = last - 1
    redis.call('HSET', KEYS[1], 'last', last)
  end
end
return remember(KEYS[1], token, {1, item, first, last})
