-- Record a click on (or, for a CPA ad, an action after) an ad shown for a request (Redis in
-- Action §7.3.4, record_click). Type checks compare text with text, and the type's counters are
-- the same ones the eCPM update reads (the book INCRs 'type:<t>:clicks:' but reads
-- 'type:<t>:clicks', and compares bytes with 'cpa'). The reply is kept as a
-- receipt under the caller's token, so a retried call counts one click.
-- KEYS[1] type      HASH ad -> type
-- KEYS[2] stats     HASH '<type>:views' | '<type>:clicks' | '<type>:actions' -> count (and
--                   base of the receipts)
-- KEYS[3] matched   SET of the words the request matched
-- KEYS[4] clicks    ZSET word -> clicks of the ad ('' = all)
-- KEYS[5] actions   ZSET word -> actions of the ad ('' = all)
-- ARGV[1] ad        ARGV[2] action ('1' or '0')    ARGV[3] matched_ttl_ms
-- ARGV[4] token     the caller's
-- returns: 1, or 0 if the ad is unknown
-- @include once
local kept = receipt(KEYS[2], ARGV[4])
if kept then
  return kept
end
local kind = redis.call('HGET', KEYS[1], ARGV[1])
if not kind then
  return 0
end
local action = ARGV[2] == '1'
local counts = KEYS[4]
if kind == 'cpa' then
  -- keep the matched words for the action that may follow the click
  redis.call('PEXPIRE', KEYS[3], ARGV[3])
  if action then
    counts = KEYS[5]
  end
end
if action and kind == 'cpa' then
  redis.call('HINCRBY', KEYS[2], 'cpa:actions', 1)
else
  redis.call('HINCRBY', KEYS[2], kind .. ':clicks', 1)
end
for _, w in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  redis.call('ZINCRBY', counts, 1, w)
end
redis.call('ZINCRBY', counts, 1, '')
return remember(KEYS[2], ARGV[4], 1)
