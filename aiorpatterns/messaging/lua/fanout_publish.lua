-- Append entries to a fan-out stream, bounded by length and/or age (Redis in Action §6.6
-- copy_logs_to_redis, on a stream: XADD MAXLEN / MINID).
-- KEYS[1] stream      STREAM of entries {data: JSON text}
-- ARGV[1] maxlen      most entries kept (0: no bound)
-- ARGV[2] exact       "1": trim to exactly maxlen / max age; "0": approximately ("~", cheaper)
-- ARGV[3] max_age_ms  drop entries older than this, by the server's clock (0: no bound)
-- ARGV[4] token       this batch's random token (its receipt: a retry appends nothing and
--                     answers the same ids)
-- ARGV[5..] the entries' JSON texts, in order
-- returns: the new entries' ids, in order
-- @include once

local stream = KEYS[1]
local kept = receipt(stream, ARGV[4])
if kept then return kept end
-- maxlen goes to XADD as the caller's text: a Lua number above 2^53 would print as 9.2e+18.
local maxlen, exact, max_age = ARGV[1], ARGV[2] == '1', tonumber(ARGV[3])
local how = exact and '=' or '~'
local ids = {}
for i = 5, #ARGV do
  if maxlen ~= '0' then
    ids[#ids + 1] = redis.call('XADD', stream, 'MAXLEN', how, maxlen, '*', 'data', ARGV[i])
  else
    ids[#ids + 1] = redis.call('XADD', stream, '*', 'data', ARGV[i])
  end
end
if max_age > 0 then
  local t = redis.call('TIME')
  local oldest = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - max_age
  -- Entry ids start with the server's time in ms, so MINID drops entries by age.
  redis.call('XTRIM', stream, 'MINID', how, string.format('%.0f', oldest))
end
return remember(stream, ARGV[4], ids)
