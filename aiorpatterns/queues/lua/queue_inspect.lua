-- Read a queue's state: counts, or a page of dead letters (read-only).
-- KEYS[1] ready     ZSET task id -> level * 2^44 + sequence
-- KEYS[2] delayed   ZSET task id -> due time (ms)
-- KEYS[3] running   ZSET task id -> visibility deadline (ms)
-- KEYS[4] tasks     HASH task id -> payload
-- KEYS[5] meta      HASH task id -> cjson record (see _queue_common.lua)
-- KEYS[6] dead      ZSET task id -> dead-lettered at (us)
-- ARGV[1] what        "counts", "dead" or "status"
-- ARGV[2] id          the task id, for "status"
-- ARGV[2] offset      first dead letter to return (oldest first), for "dead"
-- ARGV[3] count       how many dead letters, for "dead"
-- returns: counts: {ready, delayed, running, dead}; dead: {id, payload, record, ...};
--          status: {state, outcome record or ""}, state one of queued, delayed, failed (waiting
--          to be retried), running, aborting, dead, done, aborted, unknown
local READY, DELAYED, RUNNING, TASKS, META, DEAD
  = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
-- @include queue_common

if ARGV[1] == 'counts' then
  return {redis.call('ZCARD', READY), redis.call('ZCARD', DELAYED),
          redis.call('ZCARD', RUNNING), redis.call('ZCARD', DEAD)}
end
if ARGV[1] == 'status' then
  local id = ARGV[2]
  local m = load(id)
  if m then
    if redis.call('ZSCORE', READY, id) then return {'queued', ''} end
    if redis.call('ZSCORE', RUNNING, id) then return {m.x and 'aborting' or 'running', ''} end
    if redis.call('ZSCORE', DEAD, id) then return {'dead', m.r or ''} end
    if redis.call('ZSCORE', DELAYED, id) then
      return {(m.a or 0) > 0 and 'failed' or 'delayed', m.r or ''}
    end
  end
  local outcome = redis.call('LINDEX', result_key(id), 0)
  if outcome then return {cjson.decode(outcome).s, outcome} end
  return {'unknown', ''}
end
local first = tonumber(ARGV[2])
local ids = redis.call('ZRANGE', DEAD, first, first + tonumber(ARGV[3]) - 1)
local reply = {}
for _, id in ipairs(ids) do
  local data = redis.call('HGET', TASKS, id)
  local raw = redis.call('HGET', META, id)
  if data and raw then
    reply[#reply + 1] = id
    reply[#reply + 1] = data
    reply[#reply + 1] = raw
  end
end
return reply
