-- Sort document ids by a field of their HASHes and cache the order: the Redis Cluster stand-in
-- for SORT ... BY <doc>:*->field ... STORE (Redis in Action §7.2.1, search_and_sort), which Redis
-- refuses on a cluster. It orders exactly as SORT does: numerically, a missing field counts 0 and
-- ties go by id (bytes); alphabetically (ALPHA), by the bytes of the value, missing values first.
-- SORT leaves alphabetic ties in no particular order; here they go by id. Descending is the
-- exact reverse. Values are compared byte by byte, not with Lua's '<' (strcoll: the server's
-- locale would decide), as SORT ... STORE compares.
-- KEYS[1] cache     LIST the sorted ids are stored in (expires after ttl_ms)
-- KEYS[2..N+1]      the HASH of each document, in the order of the ids in ARGV
-- ARGV[1] ttl_ms    ARGV[2] start    ARGV[3] num    ARGV[4] field
-- ARGV[5] alpha ('1' to compare as bytes, '0' as numbers)    ARGV[6] desc ('1' for descending)
-- ARGV[7..N+6]      the document ids
-- returns: {total, ids of the page}; an error if a numeric sort meets a value that is no number
local CHUNK = 1000
local field, alpha, desc = ARGV[4], ARGV[5] == '1', ARGV[6] == '1'

local function bytes_less(a, b)
  if a == b then
    return false
  end
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then
      return x < y
    end
  end
  return #a < #b
end

-- As SORT parses with strtod: '' is 0, trailing blanks or NaN are errors.
local function number(value, id)
  if value == '' then
    return 0
  end
  local n = tonumber(value)
  if n == nil or n ~= n or string.find(value, '%s$') then
    error(redis.error_reply("NOTNUMBER field '" .. field .. "' of document '" .. id .. "' is not a number"))
  end
  return n
end

local entries = {}
for i = 2, #KEYS do
  local id = ARGV[i + 5]
  local ok, value = pcall(redis.call, 'HGET', KEYS[i], field)
  if not ok or not value then
    value = nil -- a missing hash (or one of another type) is a missing value, as for SORT
  end
  if not alpha then
    value = value and number(value, id) or 0
  end
  entries[#entries + 1] = {id, value}
end

local less
if alpha then
  less = function(p, q)
    local a, b = p[2], q[2]
    if a ~= b then
      if a == nil then return true end
      if b == nil then return false end
      return bytes_less(a, b)
    end
    return bytes_less(p[1], q[1])
  end
else
  less = function(p, q)
    if p[2] ~= q[2] then
      return p[2] < q[2]
    end
    return bytes_less(p[1], q[1])
  end
end
table.sort(entries, less)

local ids, n = {}, #entries
for i = 1, n do
  ids[i] = desc and entries[n + 1 - i][1] or entries[i][1]
end
local cache = KEYS[1]
redis.call('DEL', cache)
for i = 1, n, CHUNK do
  redis.call('RPUSH', cache, unpack(ids, i, math.min(i + CHUNK - 1, n)))
end
redis.call('PEXPIRE', cache, ARGV[1])
local start, num = tonumber(ARGV[2]), tonumber(ARGV[3])
if num == 0 then
  return {n, {}}
end
return {n, redis.call('LRANGE', cache, start, start + num - 1)}
