-- The server's clock and exact integers (inlined by "-- @include clock").

-- Milliseconds since the epoch by the server's TIME (one clock for every client).
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Integers as exact decimal strings (tostring would round to 14 digits).
local function int(n)
  return string.format('%.0f', n)
end
