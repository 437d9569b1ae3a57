-- Move a log processor's progress from the position it expects to a new one (compare and set).
-- Retry-safe from the data: the move records the caller's token beside the position, so the
-- same call sent again finds its own move done and answers 1 again, where a plain compare would
-- see "moved by someone else" and report a conflict that never happened.
-- KEYS[1]  progress HASH: file -> name of the file being read, offset -> bytes done in it,
--          token -> the token of the call that moved it there
-- ARGV[1]  expected file ('' when no progress was recorded yet)
-- ARGV[2]  expected offset
-- ARGV[3]  new file
-- ARGV[4]  new offset
-- ARGV[5]  the caller's token for this move
-- returns  1 when moved (now or by this same call before), 0 when the progress was not the
--          expected one (another processor ran)
local current = redis.call('HMGET', KEYS[1], 'file', 'offset', 'token')
local file = current[1] or ''
local offset = tonumber(current[2] or '0')
if current[3] == ARGV[5] and file == ARGV[3] and offset == tonumber(ARGV[4]) then
  return 1
end
if file ~= ARGV[1] or offset ~= tonumber(ARGV[2]) then
  return 0
end
redis.call('HSET', KEYS[1], 'file', ARGV[3], 'offset', ARGV[4], 'token', ARGV[5])
return 1
