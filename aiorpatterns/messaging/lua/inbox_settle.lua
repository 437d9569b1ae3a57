-- Settle a received message: ack (delete), release (back to the head), extend its lease, or
-- give up a receive whose reply never arrived (Redis in Action §6.5.1).
-- KEYS[1] messages   LIST envelopes (see _inbox_common.lua for all six keys)
-- KEYS[2] held       HASH receive token -> envelope
-- KEYS[3] leases     ZSET receive token -> lease deadline (ms)
-- KEYS[4] signal     LIST wake-up tokens
-- KEYS[5] abandoned  ZSET receive token -> tombstone end (ms)
-- KEYS[6] seq        STRING last message id
-- ARGV[1] token      the receive() call's token
-- ARGV[2] mode       "ack", "release", "extend" or "abandon"
-- ARGV[3] ms         extend: the new lease from now; abandon: how long the tombstone lasts
-- ARGV[4] call       this settle call's random token: an ack, release or abandon that took
--                    effect keeps its receipt under it, so a retry answers 1 again (extend
--                    needs none: running it twice sets the same lease)
-- returns: ack/release/abandon: 1 if the message was still this token's, else 0;
--          extend: the new deadline (ms), or 0 if the message is no longer this token's
-- @include inbox_common
-- @include once

local token, mode, ms, call = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local kept = receipt(LEASES, call)
if kept then return kept end
local mine = redis.call('ZSCORE', LEASES, token) ~= false
if mode == 'abandon' then
  -- A tombstone even when the token held a message: a retry of its claim arriving late (on
  -- another connection) must not take a new one for a receive that has given up.
  local now = now_ms()
  redis.call('ZREMRANGEBYSCORE', ABANDONED, '-inf', now)
  redis.call('ZADD', ABANDONED, now + ms, token)
  redis.call('PEXPIRE', ABANDONED, ms)
  if not mine then return 0 end
end
if not mine then return 0 end
if mode == 'ack' then
  redis.call('HDEL', HELD, token)
  redis.call('ZREM', LEASES, token)
elseif mode == 'extend' then
  local deadline = now_ms() + ms
  redis.call('ZADD', LEASES, deadline, token)
  return deadline
else
  give_back({token})
  wake(1)
end
return remember(LEASES, call, 1)
