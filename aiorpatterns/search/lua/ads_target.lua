-- Pick the ad with the highest eCPM for a request, with bonuses for the page's words (Redis in
-- Action §7.3.2-§7.3.3, target_ads, match_location, finish_scoring). An ad placed in any of the
-- locations scores its eCPM plus half its lowest and half its highest bonus over the page words
-- it has: base + (0.5 * min + 0.5 * max), in that order, so the sum never depends on how Redis
-- orders the inputs of a union. Ties go to the greatest ad id (ZREVRANGE). The reply is kept as
-- a receipt under the caller's token, so a retried call answers the same target id and takes
-- no second one.
-- KEYS[1] value     ZSET ad -> eCPM
-- KEYS[2] served    counter of targeting requests (the target id; base of the receipts)
-- KEYS[3..8]        scratch ZSETs: matched, base, word, min, max, final (deleted before returning)
-- KEYS[9..8+L]      the location SETs
-- KEYS[9+L..]       the page words' ZSETs (ad -> bonus)
-- ARGV[1] L         ARGV[2] token: the caller's
-- returns: {target id, ad id or false}
-- @include once
local value, served = KEYS[1], KEYS[2]
local kept = receipt(served, ARGV[2])
if kept then
  return kept
end
local matched, base, word, low, high, final = KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local L = tonumber(ARGV[1])

redis.call('SUNIONSTORE', matched, unpack(KEYS, 9, 8 + L))
redis.call('ZINTERSTORE', base, 2, matched, value, 'WEIGHTS', 0, 1)
local result = base
if #KEYS > 8 + L then
  for i = 9 + L, #KEYS do
    redis.call('ZINTERSTORE', word, 2, matched, KEYS[i], 'WEIGHTS', 0, 1)
    redis.call('ZUNIONSTORE', low, 2, low, word, 'AGGREGATE', 'MIN')
    redis.call('ZUNIONSTORE', high, 2, high, word, 'AGGREGATE', 'MAX')
  end
  redis.call('ZUNIONSTORE', final, 2, low, high, 'WEIGHTS', 0.5, 0.5)
  redis.call('ZUNIONSTORE', final, 2, base, final)
  result = final
end
local target = redis.call('INCR', served)
local top = redis.call('ZREVRANGE', result, 0, 0)
redis.call('DEL', matched, base, word, low, high, final)
return remember(served, ARGV[2], {target, top[1] or false})
