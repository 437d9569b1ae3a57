-- Shared part of the chat scripts (inlined by "-- @include chat_common").
-- Every chat script takes the same six KEYS, all under the chat's one hash tag:
--   MEMBERS   ZSET member -> position: the id of the last message the member acknowledged
--   CLAIMS    HASH member -> "<token> <deadline ms> <last id>": the batch a fetch handed out
--   MSGS      ZSET envelope JSON -> message id
--   SEQ       STRING id of the last message sent (ids are 1, 2, 3, ... with no gaps)
--   ABANDONED ZSET fetch token -> end of its tombstone (server ms): fetches given up by callers
--   SIGNAL    STREAM holding the newest message's id as entry id <id>-0 (XADD MAXLEN 1): a
--             fetch with nothing pending blocks in XREAD on it, from <its position>-0
-- The chat exists while MEMBERS does; the last member's leave deletes every key.
local MEMBERS, CLAIMS, MSGS, SEQ, ABANDONED, SIGNAL = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5],
  KEYS[6]

-- @include clock

-- Add one message: the id comes from the same atomic step as the insert, so ids appear in
-- order and a reader can never pass over a lower id that is written later (the book needs a
-- lock for that, Redis in Action §6.5.2 send_message).
local function post(sender_json, message_json)
  local id = redis.call('INCR', SEQ)
  local envelope = '{"id":' .. int(id) .. ',"ts":' .. int(now_ms()) .. ',"sender":'
    .. sender_json .. ',"message":' .. message_json .. '}'
  redis.call('ZADD', MSGS, id, envelope)
  redis.call('XADD', SIGNAL, 'MAXLEN', 1, int(id) .. '-0', 'id', int(id))
  return id
end

-- Drop the messages every member has acknowledged: the lowest position bounds them. Positions
-- move only on an ack, so no message that someone has not acknowledged is ever dropped.
local function trim()
  local low = redis.call('ZRANGE', MEMBERS, 0, 0, 'WITHSCORES')
  if low[2] then redis.call('ZREMRANGEBYSCORE', MSGS, '-inf', low[2]) end
end
