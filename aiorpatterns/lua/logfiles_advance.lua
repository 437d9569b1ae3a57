-- Move a log processor's progress from the position it expects to a new one (compare and set).
-- KEYS[1]  progress HASH: file -> name of the file being read, offset -> bytes done in it
-- ARGV[1]  expected file ('' when no progress was recorded yet)
-- ARGV[2]  expected offset
-- ARGV[3]  new file
-- ARGV[4]  new offset
-- returns  1 when moved, 0 when the progress was not the expected one (another processor ran)
local current = redis.call('HMGET', KEYS[1], 'file', 'offset')
local file = current[1] or ''
local offset = tonumber(current[2] or '0')
if file ~= ARGV[1] or offset ~= tonumber(ARGV[2]) then
  return 0
end
redis.call('HSET', KEYS[1], 'file', ARGV[3], 'offset', ARGV[4])
return 1
