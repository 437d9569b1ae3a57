-- Extend the lease of a lock we hold (Redis in Action §6.2.5, redis-py's Lock.extend).
-- KEYS[1] lock     STRING holder token
-- ARGV[1] token    the caller's token
-- ARGV[2] ms       milliseconds to add (or the new lease, with replace)
-- ARGV[3] replace  "1": set the remaining lease to ms; "0": add ms to it
-- ARGV[4] call     a fresh id per extend() call (used when adding)
-- returns: the new remaining lease in ms, or 0 if the caller does not hold the lock
-- Safe to run twice: setting the lease is idempotent; adding to it keeps a receipt under the
-- call's id, so the same call sent again answers as the first did and adds nothing more.
-- @include once

local adding = ARGV[3] ~= '1'
if adding then
  local kept = receipt(KEYS[1], ARGV[4])
  if kept then return kept end
end
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local ms = tonumber(ARGV[2])
if adding then
  ms = ms + math.max(redis.call('PTTL', KEYS[1]), 0)
end
redis.call('PEXPIRE', KEYS[1], ms)
if adding then return remember(KEYS[1], ARGV[4], ms) end
return ms
