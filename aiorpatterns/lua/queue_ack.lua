-- Acknowledge a task: it is done, delete it (Redis in Action §6.4.1, made reliable).
-- KEYS[1] ready      ZSET task id -> level * 2^44 + sequence
-- KEYS[2] delayed    ZSET task id -> due time (ms)
-- KEYS[3] running    ZSET task id -> visibility deadline (ms)
-- KEYS[4] tasks      HASH task id -> payload
-- KEYS[5] meta       HASH task id -> cjson record (see _queue_common.lua)
-- KEYS[6] dead       ZSET task id -> dead-lettered at (us)
-- KEYS[7] signal     LIST wake-up tokens
-- KEYS[8] claims     HASH claim token -> task id
-- KEYS[9] abandoned  ZSET claim token -> tombstone end (ms)
-- KEYS[10] seq       STRING FIFO sequence counter
-- ARGV[1] id          the task id
-- ARGV[2] token       the claim token it was delivered with
-- returns: 1 if the task was deleted; 0 if it is gone already or another consumer runs it now
-- @include queue_common

local id, token = ARGV[1], ARGV[2]
local m = load(id)
if not m then return 0 end
-- Redelivered after our visibility timeout and running elsewhere: that consumer owns it now.
if redis.call('ZSCORE', RUNNING, id) and m.c ~= token then return 0 end
-- Ours, or a late ack for a task taken back but not yet redelivered (or dead-lettered): the
-- work is done, so running it again would only duplicate it.
if m.c then redis.call('HDEL', CLAIMS, m.c) end
forget(id)
return 1
