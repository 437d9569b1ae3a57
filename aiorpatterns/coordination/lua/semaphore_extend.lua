-- Extend the lease of a semaphore slot we hold (Redis in Action §11.2.2, refresh_semaphore).
-- KEYS[1] holders  ZSET holder token -> end of its lease (server time, ms)
-- ARGV[1] token    the caller's token
-- ARGV[2] ms       milliseconds to add (or the new lease, with replace)
-- ARGV[3] replace  "1": set the remaining lease to ms; "0": add ms to it
-- ARGV[4] call     a fresh id per extend() call (used when adding)
-- returns: the new remaining lease in ms, or 0 if the caller does not hold a slot
-- Safe to run twice: setting the lease is idempotent; adding to it keeps a receipt under the
-- call's id, so the same call sent again answers as the first did and adds nothing more.
-- @include once

local adding = ARGV[3] ~= '1'
if adding then
  local kept = receipt(KEYS[1], ARGV[4])
  if kept then return kept end
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ends = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1]) or '0')
-- A lease that ran out is lost even if no one has reclaimed it yet: its slot may be counted
-- as free by the next acquire.
if ends <= now then return 0 end
local ms = tonumber(ARGV[2])
if adding then ms = ms + ends - now end
redis.call('ZADD', KEYS[1], 'XX', now + ms, ARGV[1])
if redis.call('PTTL', KEYS[1]) < ms then redis.call('PEXPIRE', KEYS[1], ms) end
if adding then return remember(KEYS[1], ARGV[4], ms) end
return ms
