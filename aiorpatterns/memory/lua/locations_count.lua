-- Count the location codes of one block of a location shard (Redis in Action §9.3
-- aggregate_location, readblocks and update_aggregates), on the server: the reply is a few
-- integers, never raw bytes, so it reads the same whatever the client's decode_responses.
-- KEYS[1] shard   STRING, 2 bytes per user: country code, then state code (0 = unknown)
-- ARGV[1] first   offset of the block's first byte (even)
-- ARGV[2] size    bytes per block (even); one call reads at most this many
-- returns: {more, code, users, code, users, ...}: more is 1 if the shard goes on past the
--          block; code is country * 256 + state for every code seen with a known country
local first = tonumber(ARGV[1])
local size = tonumber(ARGV[2])
local block = redis.call('GETRANGE', KEYS[1], first, first + size - 1)
local counts = {}
for i = 1, #block - 1, 2 do
  local country, state = string.byte(block, i, i + 1)
  if country ~= 0 then
    local code = country * 256 + state
    counts[code] = (counts[code] or 0) + 1
  end
end
local reply = {0}
if redis.call('STRLEN', KEYS[1]) > first + size then
  reply[1] = 1
end
for code, users in pairs(counts) do
  reply[#reply + 1] = code
  reply[#reply + 1] = users
end
return reply
