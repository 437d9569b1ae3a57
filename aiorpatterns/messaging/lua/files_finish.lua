-- Record that a consumer finished a file; the last of them deletes it and releases its bytes
-- (Redis in Action §6.6.2 process_logs_from_redis, whose INCR counts a retried or repeated
-- finish twice, and _clean, which compares that count with the consumer count as bytes).
-- KEYS[1] run        HASH the distribution (see _files_common.lua for the channel's keys)
-- KEYS[2] sizes      HASH number -> size, for the files held in Redis
-- KEYS[3] held       STRING bytes reserved
-- KEYS[4] signal     STREAM the channel's last event: a release wakes the waiting sender
-- KEYS[5] data       STRING the file's content
-- KEYS[6] finished   SET the consumers that finished the file
-- ARGV[1] run_id     the distribution the file belongs to
-- ARGV[2] number     the file's number
-- ARGV[3] consumer   who finished it
-- returns: 1 if the consumer's finish is recorded (now or before, or every consumer finished
--          and the file is gone), 0 if the distribution is not (or no longer) run_id
-- Safe to run twice: a consumer is a set member, counted once however often it finishes.
local RUN, SIZES, HELD, SIGNAL, DATA, FINISHED = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5],
  KEYS[6]
-- @include files_common
-- @include files_event

local run = redis.call('HMGET', RUN, 'id', 'count')
if run[1] ~= ARGV[1] then return 0 end
local number = ARGV[2]
local size = redis.call('HGET', SIZES, number)
if not size then return 1 end
redis.call('SADD', FINISHED, ARGV[3])
-- Integers compared as integers: the book's '2' >= '10' deleted files before ten consumers
-- had read them.
if redis.call('SCARD', FINISHED) >= tonumber(run[2]) then
  redis.call('DEL', DATA, FINISHED)
  redis.call('HDEL', SIZES, number)
  redis.call('DECRBY', HELD, size)
  event()
end
return 1
