-- Re-queue or delete dead-lettered tasks (the dead-letter list's maintenance).
-- KEYS[1] ready     ZSET task id -> level * 2^44 + sequence
-- KEYS[2] delayed   ZSET task id -> due time (ms)
-- KEYS[3] running   ZSET task id -> visibility deadline (ms)
-- KEYS[4] tasks     HASH task id -> payload
-- KEYS[5] meta      HASH task id -> cjson record (see _queue_common.lua)
-- KEYS[6] dead      ZSET task id -> dead-lettered at (us)
-- KEYS[7] signal    LIST wake-up tokens
-- KEYS[8] seq       STRING FIFO sequence counter
-- ARGV[1] mode        "requeue": back to the tail of its level, attempts reset; "delete"
-- ARGV[2] token       the caller's token for this call (its receipt: see _once.lua)
-- ARGV[3..] ids       dead task ids (ids not in the dead-letter set are skipped)
-- returns: how many tasks were re-queued or deleted
-- Safe to run twice: the second run finds the first's receipt and answers the same count.
local READY, DELAYED, RUNNING, TASKS, META, DEAD, SIGNAL, SEQ
  = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8]
-- @include queue_common
-- @include once

local mode, token = ARGV[1], ARGV[2]
local kept = receipt(DEAD, token)
if kept then return kept end
local now = now_ms()
local done = 0
for i = 3, #ARGV do
  local id = ARGV[i]
  if redis.call('ZSCORE', DEAD, id) then
    local m = load(id)
    if mode == 'requeue' and m and redis.call('HEXISTS', TASKS, id) == 1 then
      redis.call('ZREM', DEAD, id)
      m.a = 0
      m.r = nil
      m.t = nil
      redis.call('DEL', result_key(id))
      make_ready(id, m, now, true)
      save(id, m)
    else
      forget(id)
    end
    done = done + 1
  end
end
if mode == 'requeue' then wake(done) end
return remember(DEAD, token, done)
