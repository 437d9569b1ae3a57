-- Index, re-index or remove one document, leaving no stale postings (Redis in Action §7.1.1,
-- index_document, which only ever adds). The document's own SET of words says which postings
-- to drop; the caller read it and passes those postings' keys, so every key is declared. If the
-- SET has changed since (a concurrent re-index), nothing is written and the current words come
-- back for the caller to try again. Run twice, an index finds the words it wrote and the caller
-- sends them back as the old ones: the same writes again, the same reply. A removal keeps its
-- reply (whether the document existed) as a receipt under the caller's token.
-- KEYS[1] terms     SET of the words the document is indexed under
-- KEYS[2] doc       HASH of the document's fields
-- KEYS[3] docs      SET of every indexed document id (and base of the removals' receipts)
-- KEYS[4..3+F]      one ZSET per numeric field (document id -> value)
-- KEYS[4+F..3+F+N]  posting SETs of the new words (empty when removing)
-- KEYS[4+F+N..]     posting SETs of the words the caller believes are indexed (O of them)
-- ARGV[1] docid     ARGV[2] F    ARGV[3] N    ARGV[4] O
-- ARGV[5] mode      'index', or 'remove' (drop the document, its words and its fields)
-- ARGV[6] fields    '1' to replace the document's fields with the P triples below, '0' to keep them
-- ARGV[7] P         ARGV[8] token: the caller's, for the receipt of a removal
-- ARGV[9..]         N new words, O old words, then P triples (field, value, index of its ZSET
--                   among the F field KEYS, or 0 for a field that is not numeric)
-- returns: the number of words indexed (index) or 1/0 whether the document existed (remove);
--          or, when the words changed under the caller, the list of current words
-- @include once
local CHUNK = 1000
local terms, doc, docs = KEYS[1], KEYS[2], KEYS[3]
local docid = ARGV[1]
local F, N, O = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local mode, replace, P = ARGV[5], ARGV[6] == '1', tonumber(ARGV[7])
local token = ARGV[8]
local a_new, a_old, a_fields = 9, 9 + N, 9 + N + O
local k_fields, k_new, k_old = 4, 4 + F, 4 + F + N

if mode == 'remove' then
  local kept = receipt(docs, token)
  if kept then
    return kept
  end
end

-- The caller's view of the old words must be exactly the current one.
local current = redis.call('SCARD', terms)
local same = current == O
if same and O > 0 then
  for i = 0, O - 1, CHUNK do
    local last = math.min(i + CHUNK, O) - 1
    local flags = redis.call('SMISMEMBER', terms, unpack(ARGV, a_old + i, a_old + last))
    for _, flag in ipairs(flags) do
      if flag == 0 then
        same = false
        break
      end
    end
    if not same then
      break
    end
  end
end
if not same then
  return redis.call('SMEMBERS', terms)
end

local new = {}
for i = 0, N - 1 do
  new[ARGV[a_new + i]] = true
end
for i = 0, O - 1 do
  if not new[ARGV[a_old + i]] then
    redis.call('SREM', KEYS[k_old + i], docid)
  end
end
for i = 0, N - 1 do
  redis.call('SADD', KEYS[k_new + i], docid)
end
redis.call('DEL', terms)
for i = 0, N - 1, CHUNK do
  redis.call('SADD', terms, unpack(ARGV, a_new + i, a_new + math.min(i + CHUNK, N) - 1))
end

if mode == 'remove' or replace then
  redis.call('DEL', doc)
  for i = 0, F - 1 do
    redis.call('ZREM', KEYS[k_fields + i], docid)
  end
end
if mode == 'remove' then
  return remember(docs, token, redis.call('SREM', docs, docid))
end
for i = 0, P - 1 do
  local name, value, zset = ARGV[a_fields + 3 * i], ARGV[a_fields + 3 * i + 1], tonumber(ARGV[a_fields + 3 * i + 2])
  redis.call('HSET', doc, name, value)
  if zset > 0 then
    redis.call('ZADD', KEYS[k_fields + zset - 1], value, docid)
  end
end
redis.call('SADD', docs, docid)
return N
