-- Store a computed page and wake its waiters, or give a claim up (Redis in Action §2.3
-- cache_request; the book's SETEX, with the stampede claim of cache_page_claim released here).
-- KEYS[1] page     STRING the cached page: a type marker, then the content (caching.py)
-- KEYS[2] claim    STRING the computing caller's token
-- KEYS[3] ready    LIST waiters block on
-- ARGV[1] token    the caller's token
-- ARGV[2] mode     'fill' (store ARGV[3]) or 'release' (the computation failed)
-- ARGV[3] content  the page as stored, marker first (an empty page is cached too)
-- ARGV[4] ttl_ms   how long the page stays cached
-- ARGV[5] wake_ms  how long the wake-up signal stays (waiters that start blocking late see it)
-- returns: 1 if the caller still held the claim, else 0 (a fill is stored either way)
-- Retry-safe by the token: a second run no longer holds the claim, so a release does nothing
-- and a fill stores the same content again (the caller does not read the reply).
local owned = redis.call('GET', KEYS[2]) == ARGV[1]
if owned then
  redis.call('DEL', KEYS[2])
end
if ARGV[2] == 'fill' then
  redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
elseif not owned then
  -- Someone else computes now: waking the waiters would only make them wait again.
  return 0
end
redis.call('DEL', KEYS[3])
redis.call('RPUSH', KEYS[3], '1')
redis.call('PEXPIRE', KEYS[3], ARGV[5])
return owned and 1 or 0
