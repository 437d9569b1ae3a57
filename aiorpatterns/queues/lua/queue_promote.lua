-- Promote due delayed tasks to the ready set in one step (Redis in Action §6.4.2 poll_queue).
-- KEYS[1] ready     ZSET task id -> level * 2^44 + sequence
-- KEYS[2] delayed   ZSET task id -> due time (ms)
-- KEYS[3] tasks     HASH task id -> payload
-- KEYS[4] meta      HASH task id -> cjson record (see _queue_common.lua)
-- KEYS[5] signal    LIST wake-up tokens
-- KEYS[6] seq       STRING FIFO sequence counter
-- ARGV[1] limit       most tasks to promote
-- ARGV[2] token       the caller's token for this call (its receipt: see _once.lua)
-- returns: {now_ms, id, id, ...} the ids promoted
-- Safe to run twice: the second run finds the first's receipt and answers the same ids.
local READY, DELAYED, TASKS, META, SIGNAL, SEQ
  = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
-- @include queue_common
-- @include once

local kept = receipt(DELAYED, ARGV[2])
if kept then return kept end
local now = now_ms()
local ids = promote(now, tonumber(ARGV[1]))
wake(#ids)
local reply = {now}
for i, id in ipairs(ids) do reply[i + 1] = id end
return remember(DELAYED, ARGV[2], reply)
