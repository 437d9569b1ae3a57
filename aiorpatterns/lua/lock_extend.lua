-- Extend the lease of a lock we hold (Redis in Action §6.2.5, redis-py's Lock.extend).
-- KEYS[1] lock     STRING holder token
-- ARGV[1] token    the caller's token
-- ARGV[2] ms       milliseconds to add (or the new lease, with replace)
-- ARGV[3] replace  "1": set the remaining lease to ms; "0": add ms to it
-- returns: the new remaining lease in ms, or 0 if the caller does not hold the lock
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local ms = tonumber(ARGV[2])
if ARGV[3] ~= '1' then
  ms = ms + math.max(redis.call('PTTL', KEYS[1]), 0)
end
redis.call('PEXPIRE', KEYS[1], ms)
return ms
