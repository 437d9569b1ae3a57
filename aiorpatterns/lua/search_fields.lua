-- Set or increment fields of one document: its HASH (for sorting by a field, Redis in Action
-- §7.2.1) and, for numeric fields, the field's ZSET (for weighted sorts, §7.2.2), in one step so
-- the two never disagree.
-- KEYS[1] doc       HASH of the document's fields
-- KEYS[2..]         the ZSETs of the numeric fields named below
-- ARGV[1] docid     ARGV[2] mode: 'set' or 'incr' (one numeric field, HINCRBYFLOAT)
-- ARGV[3..]         triples (field, value or increment, index of its ZSET among KEYS[2..], or 0)
-- returns: 'set': the number of fields written; 'incr': the field's new value (a string), or
-- an error (nothing written) if it would not be 0 or a normal double
local doc, docid = KEYS[1], ARGV[1]
if ARGV[2] == 'incr' then
  -- HINCRBYFLOAT adds in long double, so it can store 3.4e308, which ZADD (and SORT) refuse:
  -- check the sum as a double first, before anything is written.
  local current = tonumber(redis.call('HGET', doc, ARGV[3]) or '0')
  if current then
    local size = math.abs(current + tonumber(ARGV[4]))
    if size == math.huge or (size > 0 and size < 2.2250738585072014e-308) then
      return redis.error_reply('RANGE the new value of ' .. ARGV[3] .. ' is out of range of a double')
    end
  end
  local value = redis.call('HINCRBYFLOAT', doc, ARGV[3], ARGV[4])
  redis.call('ZADD', KEYS[1 + tonumber(ARGV[5])], value, docid)
  return value
end
local count = 0
for i = 3, #ARGV, 3 do
  local name, value, zset = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  redis.call('HSET', doc, name, value)
  if zset > 0 then
    redis.call('ZADD', KEYS[1 + zset], value, docid)
  end
  count = count + 1
end
return count
