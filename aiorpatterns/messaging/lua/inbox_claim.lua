-- Hand the oldest message to a receiver under a lease, after taking back the messages of
-- receivers whose lease ran out (Redis in Action §6.5.1, with a processing list).
-- KEYS[1] messages   LIST envelopes (see _inbox_common.lua for all six keys)
-- KEYS[2] held       HASH receive token -> envelope
-- KEYS[3] leases     ZSET receive token -> lease deadline (ms)
-- KEYS[4] signal     LIST wake-up tokens
-- KEYS[5] abandoned  ZSET receive token -> tombstone end (ms)
-- KEYS[6] seq        STRING last message id
-- ARGV[1] token      the receive() call's random token
-- ARGV[2] lease_ms   how long the message stays with this receiver without an ack
-- ARGV[3] batch      most expired leases taken back in this step
-- returns: {1, deadline_ms, envelope} for a message (this token's, if it already holds one);
--          {0, wait_ms} for none: ms until a lease ends (0: already, -1: none is held);
--          {-2} if this token was abandoned. The first element says which, always.
-- Safe to run twice: a token that already holds a message gets that same message back (a
-- retried claim must not take a second one and orphan the first).
-- @include inbox_common

local token, lease_ms, batch = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
-- The caller's clean-up already ran (a cancelled receive whose step reached the server late,
-- on another connection): a message handed out now would wait for nobody until its lease ends.
if redis.call('ZSCORE', ABANDONED, token) then return {-2} end
local now = now_ms()
local expired = redis.call('ZRANGEBYSCORE', LEASES, '-inf', now, 'LIMIT', 0, batch)
local back = give_back(expired)
local mine = redis.call('HGET', HELD, token)
if mine then
  -- This token's claim ran already (its reply was lost): answer it again, change nothing.
  if back > 0 then wake(back) end
  return {1, tonumber(redis.call('ZSCORE', LEASES, token)), mine}
end
local envelope = redis.call('LPOP', MESSAGES)
if not envelope then
  -- Nothing to receive: every wake-up token left is stale (a later send adds a fresh one).
  redis.call('DEL', SIGNAL)
  local first = redis.call('ZRANGE', LEASES, 0, 0, 'WITHSCORES')
  if first[2] then return {0, math.max(0, tonumber(first[2]) - now)} end
  return {0, -1}
end
local deadline = now + lease_ms
redis.call('HSET', HELD, token, envelope)
redis.call('ZADD', LEASES, deadline, token)
-- Messages this step took back may have no receiver awake to take them.
if back > 1 then wake(back - 1) end
return {1, deadline, envelope}
