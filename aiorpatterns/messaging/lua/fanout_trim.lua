-- Drop the entries every consumer group has acknowledged (Redis in Action §6.6 _clean, which
-- waits for a count of readers and compares that count as bytes).
-- KEYS[1] stream   STREAM of entries
-- ARGV[1] token    the trim() call's random token (its receipt: a retry answers the same count)
-- returns: how many entries were dropped (0 if the stream has no group)
-- @include once

local stream = KEYS[1]
local kept = receipt(stream, ARGV[1])
if kept then return kept end
if redis.call('EXISTS', stream) == 0 then return 0 end

local function parse(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return {tonumber(ms), tonumber(seq)}
end

local function less(a, b)
  return a[1] < b[1] or (a[1] == b[1] and a[2] < b[2])
end

local floor = nil
for _, group in ipairs(redis.call('XINFO', 'GROUPS', stream)) do
  local info = {}
  for i = 1, #group, 2 do info[group[i]] = group[i + 1] end
  -- Everything up to the last delivered id that is not pending was acknowledged: the group
  -- still needs its oldest pending entry and whatever comes after the last delivered one.
  local keep = parse(info['last-delivered-id'])
  keep[2] = keep[2] + 1
  if tonumber(info['pending']) > 0 then
    local oldest = parse(redis.call('XPENDING', stream, info['name'])[2])
    if less(oldest, keep) then keep = oldest end
  end
  if floor == nil or less(keep, floor) then floor = keep end
end
if floor == nil then return 0 end
local dropped = redis.call('XTRIM', stream, 'MINID', '=',
  string.format('%.0f', floor[1]) .. '-' .. string.format('%.0f', floor[2]))
if dropped == 0 then return 0 end -- a second run drops nothing either: no receipt needed
return remember(stream, ARGV[1], dropped)
