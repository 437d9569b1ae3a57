-- Find the IP range that ends at or after an address, and its city, in one atomic step (Redis in
-- Action §5.3 find_city_by_ip). The book reads the range with ZREVRANGEBYSCORE and the city with
-- HGET in two round trips, so a re-import landing between them could pair a range of one import
-- with a city of another; here both reads see the same state. The caller checks that the range
-- also starts at or before the address (a gap between ranges answers no city).
-- KEYS[1] ranges  ZSET, every score 0: '<family><end hex>:<start hex>:<city id>' members
-- KEYS[2] cities  HASH city id -> JSON [city, region, country]
-- ARGV[1] low     '[<family><address hex>', the inclusive lower bound
-- ARGV[2] high    '(<family + 1>', the exclusive end of the address family
-- returns: {member, city JSON or nil}, or nil when no range of the family ends at or after it
local hit = redis.call('ZRANGE', KEYS[1], ARGV[1], ARGV[2], 'BYLEX', 'LIMIT', 0, 1)[1]
if not hit then
  return false
end
local id = string.match(hit, '^[^:]*:[^:]*:(.*)$')
return {hit, redis.call('HGET', KEYS[2], id)}
