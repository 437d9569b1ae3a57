-- Run a parsed query, sort its matches by a field of their HASHes and cache the order: the Redis
-- Cluster stand-in for SORT ... BY <doc>:*->field ... STORE (Redis in Action §7.2.1,
-- search_and_sort), which Redis refuses on a cluster. Each document's HASH must be a declared
-- key, and which documents match is known only once the query has run: so the caller declares
-- the HASHes of the matches it expects (none at first), and the script sorts only if the query,
-- run here, matches exactly those; otherwise it answers with the matches, to be declared in the
-- next call. Query, sort and cache are thus one atomic step: a document removed or re-indexed
-- in between is never sorted as a missing value, and one added is never left out.
-- It orders exactly as SORT does: numerically, a missing field counts 0 and ties go by id
-- (bytes); alphabetically (ALPHA), by the bytes of the value, missing values first. SORT leaves
-- alphabetic ties in no particular order; here they go by id. Descending is the exact reverse.
-- Values are compared byte by byte, not with Lua's '<' (strcoll: the server's locale would
-- decide), as SORT ... STORE compares.
-- KEYS[1] cache     LIST the sorted ids are stored in (expires after ttl_ms)
-- KEYS[2..P+1]      the plan's keys (see _search_plan.lua)
-- KEYS[P+2..]       the HASH of each expected match, in the order of the ids in ARGV
-- ARGV[1] ttl_ms    ARGV[2] start    ARGV[3] num    ARGV[4] field
-- ARGV[5] alpha ('1' to compare as bytes, '0' as numbers)    ARGV[6] desc ('1' for descending)
-- ARGV[7] P         the number of the plan's keys
-- ARGV[8..]         the plan (see _search_plan.lua), then the expected matches' ids
-- returns: {total, ids of the page}, nothing cached when total is 0; or, when the matches are
-- not the expected ones, {-1, the matches}; or an error if a numeric sort meets a value that is
-- no number
-- @include search_plan
local CHUNK = 1000
local field, alpha, desc = ARGV[4], ARGV[5] == '1', ARGV[6] == '1'
local plan_keys = tonumber(ARGV[7])

local result, temporary = plan_result(2, 8, false)
local matches = redis.call('SMEMBERS', result)
if temporary then
  redis.call('DEL', result)
end
if #matches == 0 then
  return {0, {}}
end

-- The expected ids follow the plan: its group count G, G sizes and the excluded count.
local first = 8 + tonumber(ARGV[8]) + 2
local hash = {}
for i = first, #ARGV do
  hash[ARGV[i]] = KEYS[plan_keys + 2 + i - first]
end
local expected = #ARGV - first + 1
if expected ~= #matches then
  return {-1, matches}
end
for _, id in ipairs(matches) do
  if not hash[id] then
    return {-1, matches}
  end
end

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

-- The smallest normal double (DBL_MIN).
local NORMAL = 2.2250738585072014e-308

-- Whether strtod would report ERANGE for value, parsed as n: an overflow (an infinity from
-- digits, not from 'inf'), a subnormal, or nonzero digits that underflow to 0.
local function out_of_range(value, n)
  local size = math.abs(n)
  if size == math.huge then
    return not string.find(string.lower(value), 'inf', 1, true)
  end
  if size >= NORMAL then
    return false
  end
  return size > 0 or string.find(string.match(value, '^[^eEpP]*'), '[1-9a-fA-F]') ~= nil
end

-- As SORT parses with strtod: '' is 0; trailing blanks, NaN and ERANGE are errors.
local function number(value, id)
  if value == '' then
    return 0
  end
  local n = tonumber(value)
  if n == nil or n ~= n or string.find(value, '%s$') or out_of_range(value, n) then
    error(redis.error_reply("NOTNUMBER field '" .. field .. "' of document '" .. id .. "' is not a number"))
  end
  return n
end

local entries = {}
for i, id in ipairs(matches) do
  local ok, value = pcall(redis.call, 'HGET', hash[id], field)
  if not ok or not value then
    value = nil -- a missing hash (or one of another type) is a missing value, as for SORT
  end
  if not alpha then
    value = value and number(value, id) or 0
  end
  entries[i] = {id, value}
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
