-- Hand a member the next batch of messages after its position, without moving the position
-- (Redis in Action §6.5.2 fetch_pending_messages, for one chat, made two-phase).
-- KEYS[1] members    ZSET member -> position (see _chat_common.lua for all six keys)
-- KEYS[2] claims     HASH member -> "<token> <deadline ms> <last id>"
-- KEYS[3] msgs       ZSET envelope -> id
-- KEYS[4] seq        STRING last message id
-- KEYS[5] abandoned  ZSET fetch token -> tombstone end
-- KEYS[6] signal     STREAM, one entry <message id>-0 per message: wakes waiting fetches
-- ARGV[1] member     who fetches
-- ARGV[2] token      this fetch's random token (one per fetch() call)
-- ARGV[3] count      most messages in the batch
-- ARGV[4] claim_ms   how long the batch stays with this fetch without an ack
-- returns: {1, now_ms, deadline_ms, position, envelope, id, envelope, id, ...} for a batch;
--          {0, now_ms, position} if nothing is pending; {-1} if not a member (or no chat);
--          {-2, ms} if another fetch of this member holds a batch for ms more;
--          {-3} if this token was abandoned (its fetch() has given up)
-- Safe to run twice: a token whose batch is still out gets that same batch back (same messages,
-- same deadline), never a longer one or a new claim.
-- @include chat_common

local member, token = ARGV[1], ARGV[2]
-- count goes to LIMIT as the caller's text: a Lua number above 2^53 would print as 9.2e+18.
local count, claim_ms = ARGV[3], tonumber(ARGV[4])
-- The caller's clean-up already ran (a cancelled fetch whose step reached the server late, on
-- another connection): a batch handed out now would wait for nobody until its claim ends.
if redis.call('ZSCORE', ABANDONED, token) then return {-3} end
local position = redis.call('ZSCORE', MEMBERS, member)
if not position then return {-1} end
local now = now_ms()
local claim = redis.call('HGET', CLAIMS, member)
if claim then
  local owner, deadline = string.match(claim, '^(%S+) (%d+)')
  deadline = tonumber(deadline)
  -- One batch per member at a time: a second fetch would hand out the same messages again.
  -- A claim past its deadline belongs to a reader presumed dead: its batch is handed out anew.
  if owner ~= token and deadline > now then return {-2, deadline - now} end
  if owner == token and deadline > now then
    -- This token's fetch ran already (its reply was lost): the same batch again.
    local last = string.match(claim, ' (%d+)$')
    local again = redis.call('ZRANGEBYSCORE', MSGS, '(' .. position, last, 'WITHSCORES')
    return {1, now, deadline, position, unpack(again)}
  end
end
local found = redis.call('ZRANGEBYSCORE', MSGS, '(' .. position, '+inf', 'WITHSCORES',
  'LIMIT', 0, count)
if #found == 0 then
  if claim then redis.call('HDEL', CLAIMS, member) end
  return {0, now, position}
end
local deadline = now + claim_ms
redis.call('HSET', CLAIMS, member, token .. ' ' .. int(deadline) .. ' ' .. found[#found])
return {1, now, deadline, position, unpack(found)}
