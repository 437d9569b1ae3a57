-- Abort a task: a queued or delayed one is deleted now; a running one is marked, and its worker
-- is told through the abort stream (and by its next heartbeat) to stop the handler.
-- KEYS[1] ready     ZSET task id -> level * 2^44 + sequence
-- KEYS[2] delayed   ZSET task id -> due time (ms)
-- KEYS[3] running   ZSET task id -> visibility deadline (ms)
-- KEYS[4] tasks     HASH task id -> payload
-- KEYS[5] meta      HASH task id -> cjson record (see _queue_common.lua)
-- KEYS[6] dead      ZSET task id -> dead-lettered at (us)
-- KEYS[7] claims    HASH claim token -> task id
-- ARGV[1] id          the task id
-- returns: 1 aborted (deleted, its outcome kept as "aborted"), 2 aborting (running: its worker
--          stops it), 0 nothing to abort (unknown, finished or dead)
-- Safe to run twice: a running task is marked and announced once; a task already aborted
-- answers 1 again while its outcome lives (an hour, or the task's result TTL).
local READY, DELAYED, RUNNING, TASKS, META, DEAD, CLAIMS
  = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
-- @include queue_common

local ABORTS_TTL_MS = 86400000
local id = ARGV[1]
local m = load(id)
if not m then
  local outcome = redis.call('LINDEX', result_key(id), 0)
  if outcome and cjson.decode(outcome).s == 'aborted' then return 1 end
  return 0
end
if redis.call('ZSCORE', DEAD, id) then return 0 end
if redis.call('ZSCORE', RUNNING, id) then
  if not m.x then
    m.x = 1
    save(id, m)
    -- Entry ids "<n>-0", n counting up: what a stream channel's waiters compare (wakeup.py).
    local aborts = BASE .. 'aborts'
    local last = redis.call('XREVRANGE', aborts, '+', '-', 'COUNT', 1)[1]
    local n = last and tonumber(string.match(last[1], '^(%d+)')) or 0
    redis.call('XADD', aborts, 'MAXLEN', '~', 1000, (n + 1) .. '-0', 'id', id)
    redis.call('PEXPIRE', aborts, ABORTS_TTL_MS)
  end
  return 2
end
finish_aborted(id, m, now_ms())
return 1
