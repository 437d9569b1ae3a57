-- Reserve room for a file in the channel's byte budget, or find the file reserved already
-- (Redis in Action §6.6.1 copy_logs_to_redis, whose budget lives in the sender's memory and
-- is lost with it).
-- KEYS[1] run      HASH the distribution (see _files_common.lua for the channel's keys)
-- KEYS[2] names    HASH file name -> number
-- KEYS[3] sizes    HASH number -> size, for the files held in Redis
-- KEYS[4] held     STRING bytes reserved
-- KEYS[5] signal   STREAM the channel's last event
-- ARGV[1] run_id   the distribution the caller sends for
-- ARGV[2] name     the file's name
-- ARGV[3] size     its size in bytes
-- ARGV[4] limit    most bytes the channel may hold
-- returns: {1, number, size} the file is held (reserved now, or earlier: then its recorded
--          size); {2, number} it was finished by every consumer and deleted;
--          {0, last event id} no room: wait for an event above that id, then try again;
--          {-1} the distribution is not (or no longer) run_id
-- Safe to run twice: the second run finds the name reserved and answers {1, number, size}.
local RUN, NAMES, SIZES, HELD, SIGNAL = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
-- @include files_common

if redis.call('HGET', RUN, 'id') ~= ARGV[1] then return {-1} end
local name, size, limit = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local number = redis.call('HGET', NAMES, name)
if number then
  local recorded = redis.call('HGET', SIZES, number)
  if recorded then return {1, tonumber(number), tonumber(recorded)} end
  return {2, tonumber(number)}
end
local held = tonumber(redis.call('GET', HELD) or '0')
-- With nothing held a file always fits: a file above the limit (refused by the caller, or
-- held under a larger limit by an earlier run) can never wait for room that cannot come.
if held > 0 and held + size > limit then return {0, last_event()} end
number = redis.call('HINCRBY', RUN, 'files', 1)
redis.call('HSET', NAMES, name, number)
redis.call('HSET', SIZES, number, int(size))
redis.call('INCRBY', HELD, int(size))
return {1, number, size}
