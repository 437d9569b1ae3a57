-- Put a contact at the front of a user's recent contacts (Redis in Action §6.1.1).
-- KEYS[1] contacts  LIST of contacts, most recent first
-- ARGV[1] contact   the contact to add, or to move to the front if already there
-- ARGV[2] size      how many contacts the list keeps (the newest)
-- ARGV[3] call      the caller's token, one per add call (the receipt's name)
-- returns: 1 if the contact was not in the list, 0 if it was moved
-- Retry-safe by a receipt under <contacts>:<call>: a second run leaves the same list and
-- answers as the first did (it would find the contact first in the list and answer 0).
-- @include once
local kept = receipt(KEYS[1], ARGV[3])
if kept then
  return kept
end
local removed = redis.call('LREM', KEYS[1], 0, ARGV[1])
redis.call('LPUSH', KEYS[1], ARGV[1])
redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[2]) - 1)
return remember(KEYS[1], ARGV[3], removed == 0 and 1 or 0)
