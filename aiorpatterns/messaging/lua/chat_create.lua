-- Create a chat with its members and its first message, in one step (Redis in Action §6.5.2
-- create_chat, which creates the chat and sends the first message as separate steps).
-- KEYS[1] members    ZSET member -> position (see _chat_common.lua for all six keys)
-- KEYS[2] claims     HASH member -> fetched batch
-- KEYS[3] msgs       ZSET envelope -> id
-- KEYS[4] seq        STRING last message id
-- KEYS[5] abandoned  ZSET fetch token -> tombstone end
-- KEYS[6] signal     STREAM, one entry <message id>-0 per message: wakes waiting fetches
-- ARGV[1] sender_json   the sender's name as a JSON string
-- ARGV[2] message_json  the first message, JSON text
-- ARGV[3] token        the create() call's random token (its receipt: a retry answers 1)
-- ARGV[4..] the members (the sender among them), each once
-- returns: the first message's id (1), or 0 if a chat of that id exists already
-- @include chat_common
-- @include once

local kept = receipt(MEMBERS, ARGV[3])
if kept then return kept end
if redis.call('EXISTS', MEMBERS, SEQ) > 0 then return 0 end
-- Every member starts before the first message, so everyone receives it.
local args = {}
for i = 4, #ARGV do
  args[#args + 1] = 0
  args[#args + 1] = ARGV[i]
  if #args >= 1000 then
    redis.call('ZADD', MEMBERS, unpack(args))
    args = {}
  end
end
if #args > 0 then redis.call('ZADD', MEMBERS, unpack(args)) end
return remember(MEMBERS, ARGV[3], post(ARGV[1], ARGV[2]))
