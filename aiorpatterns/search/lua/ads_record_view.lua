-- Record that an ad was shown for a request (Redis in Action §7.3.4, record_targeting_result).
-- The page words the ad has are remembered for the request, so a click can credit them, and
-- counted as viewed. (The book intersects str words with bytes terms under Python 3, so it never
-- finds a word.) The reply is kept as a receipt under the caller's token, so a
-- retried call counts one view.
-- KEYS[1] type      HASH ad -> type
-- KEYS[2] stats     HASH '<type>:views' ... -> count (and base of the receipts)
-- KEYS[3] terms     SET of the ad's words
-- KEYS[4] matched   SET of the words this request matched (expires after ARGV[2] seconds)
-- KEYS[5] views     ZSET word -> views of the ad ('' = all views)
-- ARGV[1] ad        ARGV[2] matched_ttl_ms    ARGV[3] token: the caller's
-- ARGV[4..]         the page's words
-- returns: the ad's number of views, or 0 if the ad is unknown
-- @include once
local CHUNK = 1000
local kept = receipt(KEYS[2], ARGV[3])
if kept then
  return kept
end
local kind = redis.call('HGET', KEYS[1], ARGV[1])
if not kind then
  return 0
end
local words = {}
for i = 4, #ARGV, CHUNK do
  local last = math.min(i + CHUNK - 1, #ARGV)
  local flags = redis.call('SMISMEMBER', KEYS[3], unpack(ARGV, i, last))
  for j, flag in ipairs(flags) do
    if flag == 1 then
      words[#words + 1] = ARGV[i + j - 1]
    end
  end
end
for i = 1, #words, CHUNK do
  redis.call('SADD', KEYS[4], unpack(words, i, math.min(i + CHUNK - 1, #words)))
end
if #words > 0 then
  redis.call('PEXPIRE', KEYS[4], ARGV[2])
end
redis.call('HINCRBY', KEYS[2], kind .. ':views', 1)
for _, w in ipairs(words) do
  redis.call('ZINCRBY', KEYS[5], 1, w)
end
return remember(KEYS[2], ARGV[3], tonumber(redis.call('ZINCRBY', KEYS[5], 1, '')))
