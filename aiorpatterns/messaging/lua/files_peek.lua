-- Tell a consumer whether a file announced to it is still for it to process (reads only).
-- KEYS[1] run       HASH the distribution (see _files_common.lua for the channel's keys)
-- KEYS[2] sizes     HASH number -> size, for the files held in Redis
-- KEYS[3] finished  SET the consumers that finished the file
-- ARGV[1] run_id    the distribution the announcement belongs to
-- ARGV[2] number    the file's number
-- ARGV[3] consumer  who asks
-- returns: 1 to process it; 0 if this consumer finished it already, every consumer did (it is
--          gone), or the announcement is of a distribution that has ended
local RUN, SIZES, FINISHED = KEYS[1], KEYS[2], KEYS[3]

if redis.call('HGET', RUN, 'id') ~= ARGV[1] then return 0 end
if redis.call('HEXISTS', SIZES, ARGV[2]) == 0 then return 0 end
if redis.call('SISMEMBER', FINISHED, ARGV[3]) == 1 then return 0 end
return 1
