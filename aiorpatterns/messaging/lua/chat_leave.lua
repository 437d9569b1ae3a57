-- Remove a member from a chat and trim what only they held back; the last one out deletes the
-- chat (Redis in Action §6.5.2 leave_chat, made atomic).
-- KEYS[1] members    ZSET member -> position (see _chat_common.lua for all six keys)
-- KEYS[2] claims     HASH member -> fetched batch
-- KEYS[3] msgs       ZSET envelope -> id
-- KEYS[4] seq        STRING last message id
-- KEYS[5] abandoned  ZSET fetch token -> tombstone end
-- KEYS[6] signal     STREAM, one entry <message id>-0 per message: wakes waiting fetches
-- ARGV[1] member     who leaves
-- ARGV[2] token      the leave() call's random token (its receipt: a retry answers as the
--                    first run did)
-- returns: 0 if not a member, 1 if they left, 2 if they left and the chat was deleted
-- @include chat_common
-- @include once

local member, token = ARGV[1], ARGV[2]
local kept = receipt(MEMBERS, token)
if kept then return kept end
if redis.call('ZREM', MEMBERS, member) == 0 then return 0 end
redis.call('HDEL', CLAIMS, member)
if redis.call('EXISTS', MEMBERS) == 0 then
  redis.call('DEL', CLAIMS, MSGS, SEQ, ABANDONED, SIGNAL)
  return remember(MEMBERS, token, 2)
end
trim()
return remember(MEMBERS, token, 1)
