-- Settle a fetched batch: acknowledge it (move the member's position, trim what everyone has
-- acknowledged), give it back, or give up a fetch whose reply never arrived.
-- KEYS[1] members    ZSET member -> position (see _chat_common.lua for all six keys)
-- KEYS[2] claims     HASH member -> "<token> <deadline ms> <last id>"
-- KEYS[3] msgs       ZSET envelope -> id
-- KEYS[4] seq        STRING last message id
-- KEYS[5] abandoned  ZSET fetch token -> tombstone end
-- KEYS[6] signal     STREAM, one entry <message id>-0 per message: wakes waiting fetches
-- ARGV[1] member     whose batch
-- ARGV[2] token      the fetch's token
-- ARGV[3] mode       "ack": done up to ARGV[4]; "release": give the batch back;
--                    "abandon": give back whatever this token holds, or refuse its fetch to come
-- ARGV[4] through    ack: the id acknowledged up to (at most the batch's last id)
-- ARGV[5] tomb_ms    abandon: how long the tombstone lasts
-- ARGV[6] call       this settle call's random token: a settle that took effect keeps its
--                    receipt under it, so a retry answers 1 again and writes nothing
-- returns: 1 if the batch was still this token's (and is now settled), else 0
-- @include chat_common
-- @include once

local member, token, mode, call = ARGV[1], ARGV[2], ARGV[3], ARGV[6]
local kept = receipt(CLAIMS, call)
if kept then return kept end
if mode == 'abandon' then
  -- A tombstone even when the token holds the batch: a retry of its fetch arriving late (on
  -- another connection) must not claim a new batch for a fetch that has given up.
  local now = now_ms()
  local tomb_ms = tonumber(ARGV[5])
  redis.call('ZREMRANGEBYSCORE', ABANDONED, '-inf', now)
  redis.call('ZADD', ABANDONED, now + tomb_ms, token)
  redis.call('PEXPIRE', ABANDONED, tomb_ms)
end
local claim = redis.call('HGET', CLAIMS, member)
if not claim or string.match(claim, '^(%S+)') ~= token then return 0 end
redis.call('HDEL', CLAIMS, member)
if mode == 'ack' then
  local last = tonumber(string.match(claim, ' (%d+)$'))
  local through = math.min(tonumber(ARGV[4]), last)
  -- GT: a position never moves back; XX: a member who left is not added again.
  redis.call('ZADD', MEMBERS, 'XX', 'GT', int(through), member)
  trim()
end
return remember(CLAIMS, call, 1)
