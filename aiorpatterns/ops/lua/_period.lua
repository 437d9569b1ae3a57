-- Shared part of the scripts that keep a current and a previous period (inlined by
-- "-- @include period"): the common log (log_common*) and aggregate statistics (stats_*).
-- Each takes the same first four KEYS:
--   DATA    ZSET of the stored current period
--   START   STRING start of the stored current period (Unix seconds, server clock)
--   LAST    ZSET of the stored previous period
--   PSTART  STRING start of the stored previous period
local DATA, START, LAST, PSTART = KEYS[1], KEYS[2], KEYS[3], KEYS[4]

-- Make the server's current period the stored one, moving the old one to LAST first. A missing
-- DATA (nothing counted, or evicted) rotates as empty, where the book's RENAME would fail inside
-- EXEC. A stored start after the current period means the clock went back: keep counting there.
-- Returns the start of the period that now counts, as text.
local function rotate(seconds, period)
  local current = string.format('%d', seconds - seconds % period)
  local stored = redis.call('GET', START)
  local start = stored and tonumber(stored)
  if not start then
    redis.call('SET', START, current)
    return current
  end
  if start >= tonumber(current) then return stored end
  if redis.call('EXISTS', DATA) == 1 then
    redis.call('RENAME', DATA, LAST)
  else
    redis.call('DEL', LAST)
  end
  redis.call('SET', PSTART, stored)
  redis.call('SET', START, current)
  return current
end

-- The period a reader asks for, as of the server's clock, without writing: rotation happens on
-- the next write, so once the stored period has ended it already reads as the previous one.
-- Returns its start as text (false if there is none) and its key (nil if it has no data yet).
local function period_to_read(seconds, period, want_current)
  local current = seconds - seconds % period
  local stored = redis.call('GET', START)
  local start = stored and tonumber(stored)
  if start and start >= current then
    if want_current then return stored, DATA end
    return redis.call('GET', PSTART), LAST
  end
  if want_current then return string.format('%d', current), nil end
  if start then return stored, DATA end
  return redis.call('GET', PSTART), LAST
end
