-- End a distribution once every file was finished by every consumer: delete the channel's
-- keys (Redis in Action §6.6.1 copy_logs_to_redis, whose last loop polls for that moment).
-- KEYS[1] run        HASH the distribution (see _files_common.lua for the channel's keys)
-- KEYS[2] names      HASH file name -> number
-- KEYS[3] sizes      HASH number -> size, for the files held in Redis
-- KEYS[4] held       STRING bytes reserved
-- KEYS[5] signal     STREAM the channel's last event
-- KEYS[6] announced  SET numbers announced
-- ARGV[1] run_id     the distribution to end
-- returns: {1} ended (now, or before: a retry, or another distribution began since);
--          {0, last event id} files are still held: wait for an event above that id
-- Safe to run twice: the second run finds the distribution gone and answers {1}.
local RUN, NAMES, SIZES, HELD, SIGNAL, ANNOUNCED = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5],
  KEYS[6]
-- @include files_common

if redis.call('HGET', RUN, 'id') ~= ARGV[1] then return {1} end
if redis.call('HLEN', SIZES) > 0 then return {0, last_event()} end
redis.call('DEL', RUN, NAMES, SIZES, HELD, SIGNAL, ANNOUNCED)
return {1}
