-- Trim one counter's old samples and drop it from the index once it is empty (Redis in Action
-- §5.2.2 clean_counters). The book reads HKEYS, deletes with HDEL and un-indexes under WATCH in
-- separate round trips by the cleaner's own clock; here it is one atomic step by the server's
-- clock, so an update can never land between the check and the removal, and a cleaner whose
-- clock runs ahead cannot delete live samples. Retry-safe by receipt: a pass that removed
-- something keeps its reply under the caller's token, so the same call sent again answers the
-- same count instead of 0 (a pass that removed nothing is answered the same by a second run).
-- KEYS[1] known    ZSET '<precision>:<name>' -> 0, the group's index
-- KEYS[2] counter  HASH sample start -> count, at one precision
-- ARGV[1] member   the counter's index member, '<precision>:<name>'
-- ARGV[2] precision  whole seconds
-- ARGV[3] samples  how many samples to keep: those that started after now - samples * precision,
--                  and of those at most the newest `samples`
-- ARGV[4] now      Unix time in whole seconds, or '' for the server's clock
-- ARGV[5] token    the caller's token for this call (its receipt)
-- returns: {samples removed, 1 if the counter left the index else 0}
-- @include once

local BASE = KEYS[1] .. ':clean'  -- apart from counter_update's receipts, same slot
local kept = receipt(BASE, ARGV[5])
if kept then return kept end
local now = tonumber(ARGV[4]) or tonumber(redis.call('TIME')[1])
local precision = tonumber(ARGV[2])
local keep = tonumber(ARGV[3])
local cutoff = now - keep * precision

local live, dead = {}, {}
for _, field in ipairs(redis.call('HKEYS', KEYS[2])) do
  local start = tonumber(field)
  if start and start > cutoff then
    live[#live + 1] = {start, field}
  else
    dead[#dead + 1] = field
  end
end
if #live > keep then
  table.sort(live, function(a, b) return a[1] > b[1] end)
  for i = keep + 1, #live do
    dead[#dead + 1] = live[i][2]
  end
end
-- HDEL in slices: unpack() of a huge table overflows the Lua stack.
for i = 1, #dead, 1000 do
  redis.call('HDEL', KEYS[2], unpack(dead, i, math.min(i + 999, #dead)))
end
local dropped = 0
if redis.call('EXISTS', KEYS[2]) == 0 then
  dropped = redis.call('ZREM', KEYS[1], ARGV[1])
end
if #dead == 0 and dropped == 0 then return {0, 0} end
return remember(BASE, ARGV[5], {#dead, dropped})
