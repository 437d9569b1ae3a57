-- Read a cached page, or claim the right to compute it (Redis in Action §2.3 cache_request,
-- where every caller that misses computes the page at once: a stampede). One caller claims;
-- the others wait on the ready list for its result. Retry-safe by the caller's token: a second
-- run finds the claim its first run took and answers 'claimed' again (a token that holds the
-- claim of a page someone stored meanwhile gives the claim up and answers the hit).
-- KEYS[1] page     STRING the cached page: a type marker, then the content (caching.py)
-- KEYS[2] claim    STRING the computing caller's token (expires: a dead caller is replaced)
-- KEYS[3] ready    LIST woken waiters block on (emptied by a new claim)
-- ARGV[1] token    the caller's random token
-- ARGV[2] claim_ms how long the claim lasts unless the page is stored or the claim released
-- returns: {'hit', content}, {'claimed'} or {'wait', milliseconds the current claim still lasts}
local content = redis.call('GET', KEYS[1])
local mine = redis.call('GET', KEYS[2]) == ARGV[1]
if content then
  if mine then
    redis.call('DEL', KEYS[2])
  end
  return {'hit', content}
end
if mine then
  return {'claimed'}
end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then
  -- A signal left by an earlier computation would wake this claim's waiters at once.
  redis.call('DEL', KEYS[3])
  return {'claimed'}
end
return {'wait', redis.call('PTTL', KEYS[2])}
