-- Index, re-index or remove one ad (Redis in Action §7.3.1, index_ad, which only ever adds). The
-- ad's own SETs of locations and words say which postings to drop; the caller read them and
-- passes those postings' keys, so every key is declared. If either SET has changed since (a
-- concurrent re-index), nothing is written and both come back for the caller to try again.
-- Run twice, an index finds what it wrote and the caller sends that back as the old state: the
-- same writes again, the same eCPM. A removal keeps its reply as a receipt under the caller's
-- token (a second run would find nothing to remove and answer 0).
-- A new ad's eCPM is its bid converted with the current average rate of its type, read from the
-- shared counters (the book keeps that average in a process-local dict, AVERAGE_PER_1K).
-- KEYS[1] type      HASH ad -> 'cpc' | 'cpa' | 'cpm'
-- KEYS[2] value     ZSET ad -> eCPM
-- KEYS[3] base      ZSET ad -> bid
-- KEYS[4] stats     HASH '<type>:views' | '<type>:clicks' | '<type>:actions' -> count (and
--                   base of the removals' receipts)
-- KEYS[5] terms     SET of the ad's words
-- KEYS[6] locs      SET of the ad's locations
-- KEYS[7] views     ZSET word -> views of the ad ('' = all views)
-- KEYS[8] clicks    ZSET word -> clicks of the ad ('' = all)
-- KEYS[9] actions   ZSET word -> actions of the ad ('' = all)
-- KEYS[10..]        OL old location SETs, OW old word ZSETs, NL new location SETs, NW new word
--                   ZSETs (the old ones as the caller read them)
-- ARGV[1] ad        ARGV[2] mode: 'index' or 'remove'    ARGV[3] type    ARGV[4] bid
-- ARGV[5] OL        ARGV[6] OW    ARGV[7] NL    ARGV[8] NW
-- ARGV[9] token     the caller's, for the receipt of a removal
-- ARGV[10..]        the old locations, old words, new locations, new words
-- returns: the new eCPM as a string ('index'), 1/0 whether the ad existed ('remove'); or, when
--          the ad changed under the caller, {current locations, current words}
-- @include once
local CHUNK = 1000
local ad, mode, token = ARGV[1], ARGV[2], ARGV[9]
local OL, OW, NL, NW = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local a_ol, a_ow = 10, 10 + OL
local a_nw = 10 + OL + OW + NL
local k_ol, k_ow, k_nl, k_nw = 10, 10 + OL, 10 + OL + OW, 10 + OL + OW + NL

local function same(set, first, count)
  if redis.call('SCARD', set) ~= count then
    return false
  end
  for i = 0, count - 1, CHUNK do
    local last = first + math.min(i + CHUNK, count) - 1
    for _, flag in ipairs(redis.call('SMISMEMBER', set, unpack(ARGV, first + i, last))) do
      if flag == 0 then
        return false
      end
    end
  end
  return true
end
if mode == 'remove' then
  local kept = receipt(KEYS[4], token)
  if kept then
    return kept
  end
end
if not same(KEYS[6], a_ol, OL) or not same(KEYS[5], a_ow, OW) then
  return {redis.call('SMEMBERS', KEYS[6]), redis.call('SMEMBERS', KEYS[5])}
end

for i = 0, OL - 1 do
  redis.call('SREM', KEYS[k_ol + i], ad)
end
for i = 0, OW - 1 do
  redis.call('ZREM', KEYS[k_ow + i], ad)
end
redis.call('DEL', KEYS[5], KEYS[6])

if mode == 'remove' then
  redis.call('ZREM', KEYS[2], ad)
  redis.call('ZREM', KEYS[3], ad)
  redis.call('DEL', KEYS[7], KEYS[8], KEYS[9])
  return remember(KEYS[4], token, redis.call('HDEL', KEYS[1], ad))
end

local kind, bid = ARGV[3], tonumber(ARGV[4])
for i = 0, NL - 1 do
  redis.call('SADD', KEYS[k_nl + i], ad)
end
for i = 0, NW - 1 do
  redis.call('ZADD', KEYS[k_nw + i], 0, ad) -- no bonus until clicks say otherwise
end
for i = 0, NL - 1, CHUNK do
  redis.call('SADD', KEYS[6], unpack(ARGV, a_ol + OL + OW + i, a_ol + OL + OW + math.min(i + CHUNK, NL) - 1))
end
for i = 0, NW - 1, CHUNK do
  redis.call('SADD', KEYS[5], unpack(ARGV, a_nw + i, a_nw + math.min(i + CHUNK, NW) - 1))
end

local ecpm = bid
if kind ~= 'cpm' then
  -- The type's clicks (or actions) per 1000 views so far; 1 before any view (the book's default).
  local views = tonumber(redis.call('HGET', KEYS[4], kind .. ':views') or '0')
  local which = kind == 'cpa' and ':actions' or ':clicks'
  local average = 1
  if views > 0 then
    average = 1000 * tonumber(redis.call('HGET', KEYS[4], kind .. which) or '1') / views
  end
  ecpm = 1000 * bid * average / 1000
end
redis.call('HSET', KEYS[1], ad, kind)
redis.call('ZADD', KEYS[2], ecpm, ad)
redis.call('ZADD', KEYS[3], ARGV[4], ad)
return string.format('%.17g', ecpm)
