-- Shared part of the task-queue scripts (inlined by "-- @include queue_common").
-- A queue has ten keys, all under the queue's one hash tag. Each script is passed only the
-- keys it touches, named in its header and bound to these names on its first line, before
-- this part is inlined (tests/test_queue_keys.py checks every script's list against what the
-- functions it calls use):
--   READY     ZSET task id -> level * 2^44 + sequence number (ZPOPMIN = highest level, FIFO)
--   DELAYED   ZSET task id -> due time (server ms)
--   RUNNING   ZSET task id -> visibility deadline (server ms)
--   TASKS     HASH task id -> payload (the JSON text, stored as given)
--   META      HASH task id -> cjson record, see below (every script has it)
--   DEAD      ZSET task id -> time it was dead-lettered (server us)
--   SIGNAL    LIST wake-up tokens for blocked consumers (short, expires)
--   CLAIMS    HASH claim token -> task id, for every running task
--   ABANDONED ZSET claim token -> end of its tombstone (server ms)
--   SEQ       STRING sequence counter: FIFO order inside a level (never expires)
-- META record fields: p level (0 = highest), q sequence number, a attempts (deliveries so far),
-- m max attempts, v visibility timeout ms (absent: the consumer's default), e enqueued at,
-- d due at, rd ready since, k claimed at, c claim token (while running), r reason or last
-- error, t dead-lettered at, s the claim token that last settled it and o that settlement's
-- reply (so a settle re-sent by a client retry answers the same and does nothing), to the
-- handler's timeout ms, rt how long its outcome record lives (results kept: see below), x set
-- once an abort of the running task was asked. Times are the server's clock in ms, so no client
-- clock matters.
-- Two derived keys share the queue's hash tag (so its slot, as Redis Cluster requires of a
-- script's keys): "<base>result:<id>", a LIST holding one JSON outcome record of a finished
-- task ({s = "done", v = result} / {s = "dead", r = reason} / {s = "aborted"}) for rt ms (a
-- list, so waiters block on it: a latch, see core/wakeup.py), and "<base>aborts", a stream of
-- abort requests for running tasks ("<n>-0" -> id), which workers watch.

-- 2^44: sequence numbers stay below it, so a level always outranks every later level's task,
-- and level * 2^44 + seq stays an exact integer in a double for up to 512 levels.
local LEVEL = 17592186044416
-- Enough tokens to wake every consumer a burst of puts can keep busy; beyond that, consumers
-- find work by re-checking before they block again.
local SIGNAL_CAP = 64
local SIGNAL_TTL_MS = 60000

-- @include clock

local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

local function load(id)
  local raw = redis.call('HGET', META, id)
  if raw then return cjson.decode(raw) end
  return nil
end

local function save(id, m)
  redis.call('HSET', META, id, cjson.encode(m))
end

-- "<prefix>:queue:{name}:", the queue's keys' common part.
local BASE = string.sub(META, 1, #META - #'meta')
-- How long an aborted task's outcome is kept when it keeps no results.
local ABORTED_MS = 3600000

local function result_key(id)
  return BASE .. 'result:' .. id
end

-- Keep a finished task's outcome for its rt ms (or ttl): its status, and its result.
local function record_outcome(id, m, outcome, ttl)
  ttl = m.rt or ttl
  if not ttl then return end
  local key = result_key(id)
  redis.call('DEL', key)
  redis.call('RPUSH', key, cjson.encode(outcome))
  redis.call('PEXPIRE', key, ttl)
end

-- Wake up to n blocked consumers; the list stays short and disappears when nobody listens.
local function wake(n)
  if n < 1 then return end
  if n > SIGNAL_CAP then n = SIGNAL_CAP end
  local tokens = {}
  for i = 1, n do tokens[i] = '1' end
  redis.call('LPUSH', SIGNAL, unpack(tokens))
  redis.call('LTRIM', SIGNAL, 0, SIGNAL_CAP - 1)
  redis.call('PEXPIRE', SIGNAL, SIGNAL_TTL_MS)
end

-- Make a task ready. fresh: a new place at the tail of its level; otherwise it keeps the place
-- it had (a reclaimed or given-back task goes before everything enqueued after it).
local function make_ready(id, m, now, fresh)
  if fresh or not m.q then m.q = redis.call('INCR', SEQ) end
  m.rd = now
  redis.call('ZADD', READY, int(m.p * LEVEL + m.q), id)
end

-- Schedule a task for later; wake blocked consumers only if it is now the first one due, since
-- they already wait exactly until the first due time they were told about.
local function schedule(id, due)
  redis.call('ZADD', DELAYED, due, id)
  if redis.call('ZRANGE', DELAYED, 0, 0)[1] == id then wake(1) end
end

local function bury(id, m, now, reason)
  m.r = reason
  m.t = now
  m.c = nil
  -- Microseconds, so dead letters list in the order they died even within one millisecond.
  redis.call('ZADD', DEAD, int(now_us()), id)
  save(id, m)
  record_outcome(id, m, {s = 'dead', r = reason})
end

-- Delete every trace of a task.
local function forget(id)
  redis.call('ZREM', READY, id)
  redis.call('ZREM', DELAYED, id)
  redis.call('ZREM', RUNNING, id)
  redis.call('ZREM', DEAD, id)
  redis.call('HDEL', TASKS, id)
  redis.call('HDEL', META, id)
end

-- Move up to limit due delayed tasks to the ready set; return their ids. ZREM and ZADD happen
-- in this one step, so no task is lost between them or moved twice by concurrent promoters.
local function promote(now, limit)
  local ids = redis.call('ZRANGE', DELAYED, '-inf', now, 'BYSCORE', 'LIMIT', 0, limit)
  for _, id in ipairs(ids) do
    redis.call('ZREM', DELAYED, id)
    local m = load(id)
    if m then
      make_ready(id, m, now, true)
      save(id, m)
    else
      redis.call('HDEL', TASKS, id)
    end
  end
  return ids
end

-- Finish a task whose abort was asked: delete it, keeping its outcome "aborted".
local function finish_aborted(id, m, now)
  if m.c then redis.call('HDEL', CLAIMS, m.c) end
  record_outcome(id, m, {s = 'aborted', t = now}, ABORTED_MS)
  forget(id)
end

-- Take back up to limit running tasks whose visibility deadline has passed (their consumer
-- crashed, hung or was cut off): back to the ready set, or dead once out of attempts.
local function reclaim(now, limit)
  local ids = redis.call('ZRANGE', RUNNING, '-inf', now, 'BYSCORE', 'LIMIT', 0, limit)
  local ready = 0
  for _, id in ipairs(ids) do
    redis.call('ZREM', RUNNING, id)
    local m = load(id)
    if m and m.x then
      finish_aborted(id, m, now)  -- its worker never answered the abort
    elseif m then
      if m.c then redis.call('HDEL', CLAIMS, m.c) end
      m.c = nil
      if (m.a or 0) >= (m.m or 1) then
        bury(id, m, now, 'not acknowledged within its visibility timeout (attempt '
          .. int(m.a or 0) .. ' of ' .. int(m.m or 1) .. ')')
      else
        make_ready(id, m, now, false)
        save(id, m)
        ready = ready + 1
      end
    else
      redis.call('HDEL', TASKS, id)
    end
  end
  return ready
end

-- Milliseconds until the next delayed task is due or the next running task's visibility ends
-- (0 if one already has), or -1 if there is neither.
local function next_event(now)
  local best = -1
  for _, key in ipairs({DELAYED, RUNNING}) do
    local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')[2]
    if first then
      local wait = math.max(tonumber(first) - now, 0)
      if best < 0 or wait < best then best = wait end
    end
  end
  return best
end

-- Acknowledge a task: it is done, delete it, keeping its outcome if it keeps one. Returns 1 if
-- it is done (deleted now, or gone already: acked, by this token's earlier run or by a later
-- consumer), 0 if another consumer runs it now. Run twice, the second finds it gone: 1 again.
local function ack(id, token, result)
  local m = load(id)
  if not m then return 1 end
  -- Not delivered since it was (re)queued (an id put again after this token's ack, or a dead
  -- letter re-queued): that is not the delivery this token acks, and that one is done.
  if (m.a or 0) == 0 and not m.c then return 1 end
  -- Redelivered after our visibility timeout and running elsewhere: that consumer owns it now.
  if redis.call('ZSCORE', RUNNING, id) and m.c ~= token then return 0 end
  -- Ours, or a late ack for a task taken back but not yet redelivered (or dead-lettered): the
  -- work is done, so running it again would only duplicate it.
  if m.c then redis.call('HDEL', CLAIMS, m.c) end
  record_outcome(id, m, {s = 'done', v = result, t = now_ms()})
  forget(id)
  return 1
end
