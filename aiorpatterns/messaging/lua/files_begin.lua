-- Begin a distribution on a channel, or find the one in progress (Redis in Action §6.6.1
-- copy_logs_to_redis, which creates its chat every time it runs, whatever it left behind).
-- KEYS[1] run      HASH the distribution (see _files_common.lua for the channel's keys)
-- KEYS[2] signal   STREAM the channel's last event
-- ARGV[1] run_id   the id a new distribution takes (the caller's token)
-- ARGV[2] count    how many consumers it is for
-- ARGV[3] ready    "1": the distribution's chat exists now (wakes the consumers waiting for it)
-- returns: {run id, count, chat ready 0/1, done announced 0/1}
-- Safe to run twice: a second run finds the distribution (and its chat flag) and answers the
-- same, writing nothing.
local RUN, SIGNAL = KEYS[1], KEYS[2]
-- @include files_common
-- @include files_event

if redis.call('EXISTS', RUN) == 0 then
  redis.call('HSET', RUN, 'id', ARGV[1], 'count', ARGV[2], 'files', 0)
  event()
end
if ARGV[3] == '1' and redis.call('HSETNX', RUN, 'chat', '1') == 1 then event() end
local got = redis.call('HMGET', RUN, 'id', 'count', 'chat', 'done')
return {got[1], tonumber(got[2]), got[3] and 1 or 0, got[4] and 1 or 0}
