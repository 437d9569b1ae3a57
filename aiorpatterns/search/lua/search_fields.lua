-- Set or increment fields of one document: its HASH (for sorting by a field, Redis in Action
-- §7.2.1) and, for numeric fields, the field's ZSET (for weighted sorts, §7.2.2), in one step so
-- the two never disagree. Setting is naturally idempotent; an increment keeps its reply as a
-- receipt under the caller's token, so a retried call adds once and answers the same value.
-- KEYS[1] doc       HASH of the document's fields
-- KEYS[2] docs      SET of every indexed document id (base of the receipts, not written)
-- KEYS[3..]         the ZSETs of the numeric fields named below
-- ARGV[1] docid     ARGV[2] mode: 'set' or 'incr' (one numeric field, HINCRBYFLOAT)
-- ARGV[3] token     the caller's token ('incr'; ignored by 'set')
-- ARGV[4..]         triples (field, value or increment, index of its ZSET among KEYS[3..], or 0)
-- returns: 'set': the number of fields written; 'incr': the field's new value (a string), or
-- an error (nothing written) if it would not be 0 or a normal double
-- @include once
local doc, docid = KEYS[1], ARGV[1]
if ARGV[2] == 'incr' then
  local kept = receipt(KEYS[2], ARGV[3])
  if kept then
    return kept
  end
  -- HINCRBYFLOAT adds in long double, so it can store 3.4e308, which ZADD (and SORT) refuse:
  -- check the sum as a double first, before anything is written.
  local current = tonumber(redis.call('HGET', doc, ARGV[4]) or '0')
  if current then
    local size = math.abs(current + tonumber(ARGV[5]))
    if size == math.huge or (size > 0 and size < 2.2250738585072014e-308) then
      return redis.error_reply('RANGE the new value of ' .. ARGV[4] .. ' is out of range of a double')
    end
  end
  local value = redis.call('HINCRBYFLOAT', doc, ARGV[4], ARGV[5])
  redis.call('ZADD', KEYS[2 + tonumber(ARGV[6])], value, docid)
  return remember(KEYS[2], ARGV[3], value)
end
local count = 0
for i = 4, #ARGV, 3 do
  local name, value, zset = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  redis.call('HSET', doc, name, value)
  if zset > 0 then
    redis.call('ZADD', KEYS[2 + zset], value, docid)
  end
  count = count + 1
end
return count
