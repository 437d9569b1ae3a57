-- Index, re-index or remove one job's required skills (Redis in Action §7.4.2, index_job, and the
-- level and years variants, which only ever add). The job's own HASH of requirements says which
-- postings to drop; the caller read it and passes those postings' keys, so every key is declared.
-- If the HASH has changed since (a concurrent re-index), nothing is written and the current
-- requirements come back for the caller to try again. Run twice, an index finds the record it
-- wrote and the caller sends it back as the old one: the same writes again. A removal keeps its
-- reply (whether the job was indexed) as a receipt under the caller's token.
-- KEYS[1] record    HASH skill -> requirement of the job
-- KEYS[2] req       ZSET job -> number of distinct skills it requires (and base of the receipts)
-- KEYS[3] all       SET of every indexed job
-- KEYS[4..3+O]      postings to remove the job from (as derived from the record the caller read)
-- KEYS[4+O..]       postings to add the job to (N of them)
-- ARGV[1] job       ARGV[2] kind: 'set' (postings are SETs) or 'zset' (ZSETs scored by requirement)
-- ARGV[3] O         ARGV[4] N    ARGV[5] A (pairs the caller read)    ARGV[6] B (new pairs)
-- ARGV[7] token     the caller's, for the receipt of a removal (B = 0)
-- ARGV[8..]         N scores (one per added posting; ignored for 'set'), then the A pairs
--                   (skill, requirement) read, then the B new pairs
-- returns: 1 if the job was indexed before, else 0; or, when the record changed under the
--          caller, its current contents (a flat list of skill, requirement)
-- @include once
local CHUNK = 1000
local record, req, all = KEYS[1], KEYS[2], KEYS[3]
local job, zset = ARGV[1], ARGV[2] == 'zset'
local O, N, A, B = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local token = ARGV[7]
local a_scores, a_old, a_new = 8, 8 + N, 8 + N + 2 * A
if B == 0 then
  local kept = receipt(req, token)
  if kept then
    return kept
  end
end

local same = redis.call('HLEN', record) == A
if same then
  for i = 0, A - 1 do
    if redis.call('HGET', record, ARGV[a_old + 2 * i]) ~= ARGV[a_old + 2 * i + 1] then
      same = false
      break
    end
  end
end
if not same then
  return redis.call('HGETALL', record)
end

for i = 4, 3 + O do
  redis.call(zset and 'ZREM' or 'SREM', KEYS[i], job)
end
for i = 0, N - 1 do
  if zset then
    redis.call('ZADD', KEYS[4 + O + i], ARGV[a_scores + i], job)
  else
    redis.call('SADD', KEYS[4 + O + i], job)
  end
end
redis.call('DEL', record)
for i = 0, 2 * B - 1, 2 * CHUNK do
  redis.call('HSET', record, unpack(ARGV, a_new + i, a_new + math.min(i + 2 * CHUNK, 2 * B) - 1))
end
if B > 0 then
  redis.call('ZADD', req, B, job)
  redis.call('SADD', all, job)
else
  redis.call('ZREM', req, job)
  redis.call('SREM', all, job)
end
if B == 0 then
  return remember(req, token, A > 0 and 1 or 0)
end
return A > 0 and 1 or 0
