-- Send a message to a chat (Redis in Action §6.5.2 send_message, without its lock).
-- KEYS[1] members    ZSET member -> position (see _chat_common.lua for all six keys)
-- KEYS[2] claims     HASH member -> fetched batch
-- KEYS[3] msgs       ZSET envelope -> id
-- KEYS[4] seq        STRING last message id
-- KEYS[5] abandoned  ZSET fetch token -> tombstone end
-- KEYS[6] signal     STREAM, one entry <message id>-0 per message: wakes waiting fetches
-- ARGV[1] sender_json   the sender's name as a JSON string
-- ARGV[2] message_json  the message, JSON text
-- ARGV[3] token         the send() call's random token (its receipt: a retry sends nothing)
-- returns: the message's id, or 0 if the chat does not exist
-- @include chat_common
-- @include once

local kept = receipt(SEQ, ARGV[3])
if kept then return kept end
-- A message to a deleted chat would leave keys that no member will ever trim.
if redis.call('EXISTS', MEMBERS) == 0 then return 0 end
return remember(SEQ, ARGV[3], post(ARGV[1], ARGV[2]))
