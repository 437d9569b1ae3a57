-- Append a message to a recipient's inbox and wake a blocked receiver (Redis in Action §6.5.1).
-- KEYS[1] messages   LIST envelopes (see _inbox_common.lua for all six keys)
-- KEYS[2] held       HASH receive token -> envelope
-- KEYS[3] leases     ZSET receive token -> lease deadline (ms)
-- KEYS[4] signal     LIST wake-up tokens
-- KEYS[5] abandoned  ZSET receive token -> tombstone end (ms)
-- KEYS[6] seq        STRING last message id
-- ARGV[1] sender_json   the sender's name as a JSON string
-- ARGV[2] message_json  the message, JSON text
-- ARGV[3] token         the send() call's random token (its receipt: a retry sends nothing)
-- returns: the message's id
-- @include inbox_common
-- @include once

local kept = receipt(SEQ, ARGV[3])
if kept then return kept end
local id = redis.call('INCR', SEQ)
redis.call('RPUSH', MESSAGES, '{"id":' .. int(id) .. ',"ts":' .. int(now_ms()) .. ',"sender":'
  .. ARGV[1] .. ',"message":' .. ARGV[2] .. '}')
wake(1)
return remember(SEQ, ARGV[3], id)
