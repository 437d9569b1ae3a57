-- Read a cached value, or claim the right to compute it (Redis in Action §2.3 cache_request,
-- where every caller that misses computes at once: a stampede). One caller claims; the others
-- wait on the ready list (a latch) for its value. With a soft TTL, a value past it is stale:
-- the first caller to see it claims its refresh, the others are served the stale value.
-- KEYS[1] value    STRING the entry: "<version>|<soft>|<tags>|<kind><payload>" (entries.py;
--                  a page of PageCache is stored bare: it has no soft TTL)
-- KEYS[2] claim    STRING the computing caller's token (expires: a dead caller is replaced)
-- KEYS[3] ready    LIST woken waiters block on (emptied by a new claim)
-- KEYS[4] fresh    STRING present while the value is within its soft TTL (absent: no soft TTL
--                  was asked, or it is over)
-- ARGV[1] token    the caller's random token
-- ARGV[2] claim_ms how long the claim lasts unless the value is stored or the claim released
-- ARGV[3] soft     "1" if the caller serves stale values while one caller refreshes, else "0"
-- ARGV[4] reject   the version (the text before the first "|") of an entry the caller found
--                  invalid (a tag of it was invalidated since), so it counts as missing; ""
--                  for none
-- returns: {'hit', entry}; {'stale', entry} (another caller refreshes it); {'refresh', entry}
--          (this caller refreshes it); {'claimed'}; {'wait', ms the current claim still lasts}
-- Safe to run twice: the token that holds the claim is answered 'claimed' / 'refresh' again;
-- a hit or a wait writes nothing.
local token, claim_ms, soft, reject = ARGV[1], ARGV[2], ARGV[3] == '1', ARGV[4]
local entry = redis.call('GET', KEYS[1])
if entry and reject ~= '' and string.match(entry, '^[^|]*') == reject then
  entry = nil  -- (a value that is no entry at all is rejected by its whole text)
end
local mine = redis.call('GET', KEYS[2]) == token

local function claim()
  if mine then return true end
  if redis.call('SET', KEYS[2], token, 'NX', 'PX', claim_ms) then
    -- A signal left by an earlier computation would wake this claim's waiters at once.
    redis.call('DEL', KEYS[3])
    return true
  end
  return false
end

if entry then
  -- Written with a soft TTL (its header's second field is 1): fresh while its mark lives.
  local soft_entry = string.match(entry, '^%x+|1|') ~= nil
  if not soft or not soft_entry or redis.call('EXISTS', KEYS[4]) == 1 then
    if mine then redis.call('DEL', KEYS[2]) end  -- stored meanwhile by someone: not ours now
    return {'hit', entry}
  end
  if claim() then return {'refresh', entry} end
  return {'stale', entry}
end
if claim() then return {'claimed'} end
return {'wait', redis.call('PTTL', KEYS[2])}
