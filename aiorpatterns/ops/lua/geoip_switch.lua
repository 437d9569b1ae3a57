-- Replace a live key by the copy an import built beside it, atomically (Redis in Action §5.3
-- import_ips_to_redis / import_cities_to_redis). The book writes into the live keys row by row,
-- so readers see a half-imported table and rows of an older import are never removed; here the
-- import fills an expiring staging key and this RENAME swaps it in whole. If the staging key
-- expired during a slow import and was partly written again, its size is wrong: it is dropped
-- and the live key is left as it was. Retry-safe by receipt: the staging key is the import's own
-- (it carries the import's token), and the switch's reply is kept under it, so the same call
-- sent again answers as the first did instead of finding no staging key ("incomplete") or, for
-- an empty import, deleting a live key another import has filled since.
-- KEYS[1] staging  the key the import filled (ZSET or HASH), with a TTL
-- KEYS[2] live     the key readers use
-- ARGV[1] count    how many members/fields the import wrote (0: the import was empty)
-- returns: 1 once live holds the import (deleted for an empty one), 0 if staging was incomplete
-- @include once

local kept = receipt(KEYS[1], 'switched')
if kept then return kept end
local count = tonumber(ARGV[1])
if count == 0 then
  redis.call('DEL', KEYS[1], KEYS[2])
  return remember(KEYS[1], 'switched', 1)
end
local kind = redis.call('TYPE', KEYS[1])['ok']
local size = 0
if kind == 'zset' then
  size = redis.call('ZCARD', KEYS[1])
elseif kind == 'hash' then
  size = redis.call('HLEN', KEYS[1])
end
if size ~= count then
  redis.call('DEL', KEYS[1])
  return remember(KEYS[1], 'switched', 0)
end
redis.call('RENAME', KEYS[1], KEYS[2])
redis.call('PERSIST', KEYS[2])
return remember(KEYS[1], 'switched', 1)
