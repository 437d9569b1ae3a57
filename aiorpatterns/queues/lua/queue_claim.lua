-- Claim the next tasks for a consumer, after acking the tasks it finished and promoting due
-- delayed tasks and reclaiming expired running ones, all in one step (Redis in Action §6.4,
-- popped with ZPOPMIN): a worker's ack and its next claim cost one round trip.
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
-- ARGV[1] token       the consumer's claim token (one per get() call); with count > 1 the
--                     tasks are claimed as "<token>#1", "<token>#2", ... (one claim each)
-- ARGV[2] vis_ms      visibility timeout for tasks without their own
-- ARGV[3] batch       most delayed tasks to promote, and running tasks to reclaim, in this step
-- ARGV[4] count       most tasks to claim (0: only ack)
-- ARGV[5..] acks      id, claim token, result (serialised, or "") of each task to ack first
-- returns: {acks, wait, task...}: acks a string of one "1" (done) or "0" (another consumer
--          runs it) per task acked; then, if tasks were claimed, 0 and five fields for each,
--          {id, payload, record, now_ms, deadline_ms}; else wait: ms until a delayed task is due
--          or a visibility timeout ends (0: already), -1 if neither is pending, -2 if this token
--          was abandoned (its get() has given up)
-- Safe to run twice: the acks answer as they did (a done task is gone: "1" again); a token that
-- already holds tasks gets those same tasks back (one claim, one attempt counted), never more;
-- a claim that found nothing found nothing.
local READY, DELAYED, RUNNING, TASKS, META, DEAD, SIGNAL, CLAIMS, ABANDONED, SEQ
  = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10]
-- @include queue_common

local token, default_vis = ARGV[1], tonumber(ARGV[2])
local batch, count = tonumber(ARGV[3]), tonumber(ARGV[4])
local acked = {}
for i = 5, #ARGV, 3 do acked[#acked + 1] = ack(ARGV[i], ARGV[i + 1], ARGV[i + 2]) end
local reply = {table.concat(acked), 0}
if count < 1 then return reply end
-- The caller's clean-up already ran (a cancelled get() whose claim reached the server late, on
-- another connection): a task claimed now would go to nobody until its visibility ends.
if redis.call('ZSCORE', ABANDONED, token) then
  reply[2] = -2
  return reply
end

local function claim_token(i)
  if count == 1 then return token end
  return token .. '#' .. i
end

local function add(id, data, m, claimed_at, deadline)
  for _, v in ipairs({id, data, cjson.encode(m), claimed_at, deadline}) do
    reply[#reply + 1] = v
  end
end

-- The same claim sent again after its reply was lost (a client retry): answer what it claimed.
for i = 1, count do
  local held = redis.call('HGET', CLAIMS, claim_token(i))
  if not held then break end
  local m = load(held)
  local deadline = redis.call('ZSCORE', RUNNING, held)
  local data = redis.call('HGET', TASKS, held)
  if m and m.c == claim_token(i) and deadline and data then
    add(held, data, m, m.k, tonumber(deadline))
  end
end
if #reply > 2 then return reply end

local now = now_ms()
local moved = #promote(now, batch) + reclaim(now, batch)
local claimed = 0
while claimed < count do
  local popped = redis.call('ZPOPMIN', READY)
  if not popped[1] then break end
  local id = popped[1]
  local m = load(id)
  local data = redis.call('HGET', TASKS, id)
  if m and data then
    claimed = claimed + 1
    local claim = claim_token(claimed)
    m.a = (m.a or 0) + 1
    m.c = claim
    m.k = now
    local deadline = now + (m.v or default_vis)
    redis.call('ZADD', RUNNING, deadline, id)
    redis.call('HSET', CLAIMS, claim, id)
    save(id, m)
    add(id, data, m, now, deadline)
  else
    forget(id)  -- a ready id whose record is gone (deleted by hand): drop what is left of it
  end
end
if claimed == 0 then
  -- Nothing ready: every wake-up token left is stale (a later put adds a fresh one).
  redis.call('DEL', SIGNAL)
  reply[2] = next_event(now)
  return reply
end
-- Tasks this step made ready may have no consumer awake to take them.
if moved > 0 then wake(math.min(moved, redis.call('ZCARD', READY))) end
return reply
