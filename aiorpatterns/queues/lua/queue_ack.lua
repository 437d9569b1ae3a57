-- Acknowledge a task: it is done, delete it (Redis in Action §6.4.1, made reliable).
-- KEYS[1] ready     ZSET task id -> level * 2^44 + sequence
-- KEYS[2] delayed   ZSET task id -> due time (ms)
-- KEYS[3] running   ZSET task id -> visibility deadline (ms)
-- KEYS[4] tasks     HASH task id -> payload
-- KEYS[5] meta      HASH task id -> cjson record (see _queue_common.lua)
-- KEYS[6] dead      ZSET task id -> dead-lettered at (us)
-- KEYS[7] claims    HASH claim token -> task id
-- ARGV[1] id          the task id
-- ARGV[2] token       the claim token it was delivered with
-- ARGV[3] result      the handler's result, serialised (kept if the task keeps results)
-- returns: 1 if the task is done (deleted now, or gone already: acked, by this token's earlier
--          run or by a later consumer); 0 if another consumer runs it now
-- Safe to run twice: the second run finds the task gone and answers 1, as the first did.
local READY, DELAYED, RUNNING, TASKS, META, DEAD, CLAIMS
  = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
-- @include queue_common

return ack(ARGV[1], ARGV[2], ARGV[3])
