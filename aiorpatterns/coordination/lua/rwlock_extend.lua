-- Extend the lease of a read or write hold of a read-write lock (Redis in Action §6.2.5, §6.3.3).
-- KEYS[1] writer   STRING the writing holder's token, with its lease as the PX expiry
-- KEYS[2] readers  ZSET reading holder token -> end of its lease (server time, ms)
-- ARGV[1] token    the caller's token ("w-…" or "r-…": its prefix is its kind)
-- ARGV[2] ms       milliseconds to add (or the new lease, with replace)
-- ARGV[3] replace  "1": set the remaining lease to ms; "0": add ms to it
-- ARGV[4] call     a fresh id per extend() call (used when adding)
-- returns: the new remaining lease in ms, or 0 if the caller does not hold the lock
-- Safe to run twice: setting the lease is idempotent; adding to it keeps a receipt under the
-- call's id, so the same call sent again answers as the first did and adds nothing more.
-- @include once

local WRITER, READERS, token = KEYS[1], KEYS[2], ARGV[1]
local writing = string.sub(token, 1, 2) == 'w-'  -- as writes() in _rwlock.lua
local base = writing and WRITER or READERS
local adding = ARGV[3] ~= '1'
if adding then
  local kept = receipt(base, ARGV[4])
  if kept then return kept end
end
local ms = tonumber(ARGV[2])

if writing then
  if redis.call('GET', WRITER) ~= token then return 0 end
  if adding then ms = ms + math.max(redis.call('PTTL', WRITER), 0) end
  redis.call('PEXPIRE', WRITER, ms)
else
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local ends = tonumber(redis.call('ZSCORE', READERS, token) or '0')
  -- A lease that ran out is lost even if no one has pruned it yet: a writer may be granted
  -- the lock by the next step that looks.
  if ends <= now then return 0 end
  if adding then ms = ms + ends - now end
  redis.call('ZADD', READERS, 'XX', now + ms, token)
  if redis.call('PTTL', READERS) < ms then redis.call('PEXPIRE', READERS, ms) end
end

if adding then return remember(base, ARGV[4], ms) end
return ms
