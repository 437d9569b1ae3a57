-- Settle a claimed task without acking it: retry later, dead-letter, or give it back.
-- Redis in Action §6.4 (the book drops failed tasks; here they retry, then dead-letter).
-- KEYS[1] ready     ZSET task id -> level * 2^44 + sequence
-- KEYS[2] delayed   ZSET task id -> due time (ms)
-- KEYS[3] running   ZSET task id -> visibility deadline (ms)
-- KEYS[4] tasks     HASH task id -> payload
-- KEYS[5] meta      HASH task id -> cjson record (see _queue_common.lua)
-- KEYS[6] dead      ZSET task id -> dead-lettered at (us)
-- KEYS[7] signal    LIST wake-up tokens
-- KEYS[8] claims    HASH claim token -> task id
-- KEYS[9] abandoned ZSET claim token -> tombstone end (ms)
-- KEYS[10] seq      STRING FIFO sequence counter
-- ARGV[1] id          the task id ("" with mode abandon)
-- ARGV[2] token       the claim token it was delivered with
-- ARGV[3] mode        "retry": due again after delay_ms, or dead if out of attempts;
--                     "dead": dead-letter now; "release": back to its place in the ready set,
--                     the delivery not counted; "abandon": release whatever this token
--                     claimed, or leave a tombstone so a claim still in flight is refused;
--                     "aborted": its abort was asked and its handler stopped: delete it, its
--                     outcome kept as "aborted"
-- ARGV[4] reason      why (kept as the task's last error / dead-letter reason)
-- ARGV[5] delay_ms    the retry delay; with mode abandon, the size of a batch claim (> 1)
-- returns: 0 not ours (gone, or running elsewhere), 1 released, 2 scheduled for retry, 3 dead,
--          4 aborted
-- Safe to run twice: the record keeps the token that settled it (s) and the outcome (o), so
-- the same call again answers that outcome and changes nothing; "abandon" always leaves its
-- tombstone, so a claim with that token still on its way (a client retry) claims nothing.
local READY, DELAYED, RUNNING, TASKS, META, DEAD, SIGNAL, CLAIMS, ABANDONED, SEQ
  = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10]
-- @include queue_common

local id, token, mode, reason, delay = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
-- A tombstone outlives any claim request that can still be on its way to the server.
local TOMBSTONE_MS = 60000
local now = now_ms()
if mode == 'abandon' then
  -- Tombstone even when the claim is here to release: the same claim may still be re-sent.
  redis.call('ZREMRANGEBYSCORE', ABANDONED, '-inf', now)
  redis.call('ZADD', ABANDONED, now + TOMBSTONE_MS, token)
  redis.call('PEXPIRE', ABANDONED, TOMBSTONE_MS)
  -- A batch claim's tasks ("<token>#<i>", see queue_claim.lua; delay_ms is then the batch's
  -- size) go back one by one: those still held (the caller may have settled some).
  local given = 0
  for i = 1, delay do
    local claim = token .. '#' .. i
    local held = redis.call('HGET', CLAIMS, claim)
    local m = held and load(held)
    if m and m.c == claim and redis.call('ZSCORE', RUNNING, held) then
      redis.call('ZREM', RUNNING, held)
      redis.call('HDEL', CLAIMS, claim)
      m.c = nil
      m.a = math.max((m.a or 1) - 1, 0)
      make_ready(held, m, now, false)
      save(held, m)
      given = given + 1
    end
  end
  if given > 0 then
    wake(given)
    return 1
  end
  id = redis.call('HGET', CLAIMS, token)
  if not id then return 0 end
  mode = 'release'
end
local m = load(id)
-- Settled by this token already (this very call, re-sent after its reply was lost).
if m and m.s == token then return m.o end
if not m or m.c ~= token or not redis.call('ZSCORE', RUNNING, id) then
  -- Aborted by this token already: the task is gone, its outcome says so.
  if mode == 'aborted' and redis.call('LINDEX', result_key(id), 0) then return 4 end
  return 0
end
if mode == 'aborted' then
  finish_aborted(id, m, now)
  return 4
end
redis.call('ZREM', RUNNING, id)
redis.call('HDEL', CLAIMS, token)
m.c = nil
m.s = token
if mode == 'release' then
  m.a = math.max((m.a or 1) - 1, 0)
  m.o = 1
  make_ready(id, m, now, false)
  save(id, m)
  wake(1)
  return 1
end
m.r = reason
if mode == 'retry' and (m.a or 0) < (m.m or 1) then
  m.d = now + delay
  m.o = 2
  save(id, m)
  schedule(id, now + delay)
  return 2
end
m.o = 3
bury(id, m, now, reason)
return 3
