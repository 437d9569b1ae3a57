-- Learn an ad's eCPM and its word bonuses from its views and clicks (or actions) (Redis in Action
-- §7.3.4, update_cpms). eCPM = 1000 * bid * clicks / views, over all of the ad's views, or over
-- the views of one word for that word's eCPM; a word's bonus is its eCPM minus the ad's. Nothing
-- changes before the first click. CPM ads keep their bid. The caller read the ad's words and
-- passes their ZSETs' keys; if the words have changed since, nothing is written and the current
-- ones come back.
-- KEYS[1] type      HASH ad -> type
-- KEYS[2] base      ZSET ad -> bid
-- KEYS[3] value     ZSET ad -> eCPM
-- KEYS[4] terms     SET of the ad's words
-- KEYS[5] views     ZSET word -> views of the ad ('' = all)
-- KEYS[6] clicks    ZSET word -> clicks of the ad ('' = all)
-- KEYS[7] actions   ZSET word -> actions of the ad ('' = all)
-- KEYS[8..]         the ZSET (ad -> bonus) of each of the ad's words, in the order of ARGV
-- ARGV[1] ad        ARGV[2..] the ad's words
-- returns: 1, or 0 if the ad is unknown; or the current words when they changed
local CHUNK = 1000
local ad = ARGV[1]
local n = #ARGV - 1
local same = redis.call('SCARD', KEYS[4]) == n
for i = 2, #ARGV, CHUNK do
  if not same then
    break
  end
  for _, flag in ipairs(redis.call('SMISMEMBER', KEYS[4], unpack(ARGV, i, math.min(i + CHUNK - 1, #ARGV)))) do
    if flag == 0 then
      same = false
      break
    end
  end
end
if not same then
  return redis.call('SMEMBERS', KEYS[4])
end

local kind = redis.call('HGET', KEYS[1], ad)
if not kind then
  return 0
end
if kind == 'cpm' then
  return 1
end
local bid = tonumber(redis.call('ZSCORE', KEYS[2], ad))
local views, counts = KEYS[5], kind == 'cpa' and KEYS[7] or KEYS[6]

local function score(key, member)
  local s = redis.call('ZSCORE', key, member)
  return s and tonumber(s) or nil
end

local ad_clicks = score(counts, '') or 0
local ecpm
if ad_clicks < 1 then
  ecpm = score(KEYS[3], ad)
else
  ecpm = 1000 * bid * ad_clicks / (score(views, '') or 1)
  redis.call('ZADD', KEYS[3], ecpm, ad)
end
for i = 1, n do
  local w = ARGV[i + 1]
  local clicks = score(counts, w) or 0
  if clicks >= 1 then
    local word_ecpm = 1000 * bid * clicks / (score(views, w) or 1)
    redis.call('ZADD', KEYS[7 + i], word_ecpm - ecpm, ad)
  end
end
return 1
