-- Claim the next task for a consumer, after promoting due delayed tasks and reclaiming
-- expired running ones, all in one step (Redis in Action §6.4, popped with ZPOPMIN).
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
-- ARGV[1] token       the consumer's claim token (one per get() call)
-- ARGV[2] vis_ms      visibility timeout for tasks without their own
-- ARGV[3] batch       most delayed tasks to promote, and running tasks to reclaim, in this step
-- returns: {id, payload, record, now_ms, deadline_ms} for a claimed task; else {wait_ms}:
--          ms until a delayed task is due or a visibility timeout ends (0: already), -1 if
--          neither is pending, -2 if this token was abandoned (its get() has given up)
-- Safe to run twice: a token that already holds a running task gets that same task back (one
-- claim, one attempt counted), never a second one; a claim that found nothing found nothing.
-- @include queue_common

local token, default_vis, batch = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
-- The caller's clean-up already ran (a cancelled get() whose claim reached the server late, on
-- another connection): a task claimed now would go to nobody until its visibility ends.
if redis.call('ZSCORE', ABANDONED, token) then return {-2} end
-- The same claim sent again after its reply was lost (a client retry): answer what it claimed.
local held = redis.call('HGET', CLAIMS, token)
if held then
  local m = load(held)
  local deadline = redis.call('ZSCORE', RUNNING, held)
  local data = redis.call('HGET', TASKS, held)
  if m and m.c == token and deadline and data then
    return {held, data, cjson.encode(m), m.k, tonumber(deadline)}
  end
end
local now = now_ms()
local moved = #promote(now, batch) + reclaim(now, batch)
while true do
  local popped = redis.call('ZPOPMIN', READY)
  if not popped[1] then
    -- Nothing ready: every wake-up token left is stale (a later put adds a fresh one).
    redis.call('DEL', SIGNAL)
    return {next_event(now)}
  end
  local id = popped[1]
  local m = load(id)
  local data = redis.call('HGET', TASKS, id)
  if m and data then
    m.a = (m.a or 0) + 1
    m.c = token
    m.k = now
    local deadline = now + (m.v or default_vis)
    redis.call('ZADD', RUNNING, deadline, id)
    redis.call('HSET', CLAIMS, token, id)
    save(id, m)
    -- Tasks this step made ready may have no consumer awake to take them.
    if moved > 0 then wake(math.min(moved, redis.call('ZCARD', READY))) end
    return {id, data, cjson.encode(m), now, deadline}
  end
  -- A ready id whose record is gone (deleted by hand): drop what is left of it.
  forget(id)
end
