-- Enqueue a task, now or after a delay (Redis in Action §6.4.1, §6.4.2).
-- KEYS[1] ready     ZSET task id -> level * 2^44 + sequence
-- KEYS[2] delayed   ZSET task id -> due time (ms)
-- KEYS[3] tasks     HASH task id -> payload
-- KEYS[4] meta      HASH task id -> cjson record (see _queue_common.lua)
-- KEYS[5] signal    LIST wake-up tokens
-- KEYS[6] seq       STRING FIFO sequence counter
-- ARGV, eight per task (put_many sends several tasks in one step):
-- ARGV[1] id          the task id
-- ARGV[2] data        the payload
-- ARGV[3] level       priority level, 0 = highest
-- ARGV[4] delay_ms    0: ready now; > 0: due that long from now (server clock)
-- ARGV[5] attempts    deliveries allowed before the task is dead-lettered
-- ARGV[6] vis_ms      the task's own visibility timeout, or 0 for the consumer's default
-- ARGV[7] timeout_ms  the handler's own timeout, or 0 for the worker's default
-- ARGV[8] result_ms   keep the task's outcome (and result) this long once finished; 0: do not
-- returns: for each task, 1 if enqueued, 0 if a task with its id is already in the queue (left
--          as it is): one number for one task, a list for several
-- Safe to run twice: an id already present is a retried put (after a cancelled or failed
-- call), so each task is enqueued once.
local READY, DELAYED, TASKS, META, SIGNAL, SEQ
  = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
-- @include queue_common

local now = now_ms()
local ready = 0

local function put(id, data, level, delay, attempts, vis, timeout, keep)
  if redis.call('HEXISTS', META, id) == 1 then return 0 end
  local m = {p = level, a = 0, m = attempts, e = now, d = now + delay}
  if vis > 0 then m.v = vis end
  if timeout > 0 then m.to = timeout end
  if keep > 0 then m.rt = keep end
  redis.call('DEL', result_key(id))  -- the outcome of an earlier task that had this id
  redis.call('HSET', TASKS, id, data)
  if delay > 0 then
    save(id, m)
    schedule(id, now + delay)
  else
    make_ready(id, m, now, true)
    save(id, m)
    ready = ready + 1
  end
  return 1
end

local done = {}
for i = 1, #ARGV, 8 do
  done[#done + 1] = put(ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3]),
    tonumber(ARGV[i + 4]), tonumber(ARGV[i + 5]), tonumber(ARGV[i + 6]), tonumber(ARGV[i + 7]))
end
wake(ready)
if #done == 1 then return done[1] end
return done
