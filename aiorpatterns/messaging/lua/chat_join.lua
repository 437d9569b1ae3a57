-- Add a member to a chat, positioned after every message sent so far (Redis in Action §6.5.2
-- join_chat, which fails on a chat without messages).
-- KEYS[1] members    ZSET member -> position (see _chat_common.lua for all six keys)
-- KEYS[2] claims     HASH member -> fetched batch
-- KEYS[3] msgs       ZSET envelope -> id
-- KEYS[4] seq        STRING last message id
-- KEYS[5] abandoned  ZSET fetch token -> tombstone end
-- KEYS[6] signal     STREAM, one entry <message id>-0 per message: wakes waiting fetches
-- ARGV[1] member     who joins
-- ARGV[2] token      the join() call's random token (its receipt: a retry answers 1 again)
-- returns: 1 if joined now, 0 if already a member, -1 if the chat does not exist
-- @include chat_common
-- @include once

local kept = receipt(MEMBERS, ARGV[2])
if kept then return kept end
if redis.call('EXISTS', MEMBERS) == 0 then return -1 end
if redis.call('ZSCORE', MEMBERS, ARGV[1]) then return 0 end
redis.call('ZADD', MEMBERS, redis.call('GET', SEQ) or 0, ARGV[1])
return remember(MEMBERS, ARGV[2], 1)
