-- Extend the lease of a fair semaphore slot we hold (Redis in Action §6.3.3, refresh).
-- KEYS[1] timeouts ZSET holder token -> end of its lease (server time, ms)
-- KEYS[2] owners   ZSET holder token -> counter value at acquisition
-- ARGV[1] token    the caller's token
-- ARGV[2] ms       milliseconds to add (or the new lease, with replace)
-- ARGV[3] replace  "1": set the remaining lease to ms; "0": add ms to it
-- ARGV[4] call     a fresh id per extend() call (used when adding)
-- returns: the new remaining lease in ms, or 0 if the caller does not hold a slot
-- Safe to run twice: setting the lease is idempotent; adding to it keeps a receipt under the
-- call's id, so the same call sent again answers as the first did and adds nothing more.
-- @include once

local TIMEOUTS, OWNERS, token = KEYS[1], KEYS[2], ARGV[1]
local adding = ARGV[3] ~= '1'
if adding then
  local kept = receipt(TIMEOUTS, ARGV[4])
  if kept then return kept end
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ends = tonumber(redis.call('ZSCORE', TIMEOUTS, token) or '0')
-- The book's refresh re-adds a token that timed out and never checks the owners ZSET; here an
-- ended lease or a missing owner record means the slot is lost, and nothing is written.
if ends <= now or not redis.call('ZSCORE', OWNERS, token) then return 0 end
local ms = tonumber(ARGV[2])
if adding then ms = ms + ends - now end
redis.call('ZADD', TIMEOUTS, 'XX', now + ms, token)
for _, key in ipairs({TIMEOUTS, OWNERS}) do
  if redis.call('PTTL', key) < ms then redis.call('PEXPIRE', key, ms) end
end
if adding then return remember(TIMEOUTS, ARGV[4], ms) end
return ms
