-- Extend a running task's visibility timeout: the consumer's heartbeat (Redis in Action §6.4).
-- KEYS[1] running   ZSET task id -> visibility deadline (ms)
-- KEYS[2] meta      HASH task id -> cjson record (see _queue_common.lua)
-- ARGV[1] id          the task id
-- ARGV[2] token       the claim token it was delivered with
-- ARGV[3] ms          the new visibility timeout, from now
-- returns: the new deadline (server ms) if the task is still ours, else 0; -1 if its abort was
--          asked (the worker stops the handler: an abort request it did not see on the stream)
local RUNNING, META = KEYS[1], KEYS[2]
-- @include queue_common

local id, token, ms = ARGV[1], ARGV[2], tonumber(ARGV[3])
local m = load(id)
-- Still in RUNNING with our token: nobody reclaimed it, even if the deadline just passed.
if not m or m.c ~= token or not redis.call('ZSCORE', RUNNING, id) then return 0 end
if m.x then return -1 end
local deadline = now_ms() + ms
redis.call('ZADD', RUNNING, 'XX', deadline, id)
return deadline
