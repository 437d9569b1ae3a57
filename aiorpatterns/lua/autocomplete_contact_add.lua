-- Put a contact at the front of a user's recent contacts (Redis in Action §6.1.1).
-- KEYS[1] contacts  LIST of contacts, most recent first
-- ARGV[1] contact   the contact to add, or to move to the front if already there
-- ARGV[2] size      how many contacts the list keeps (the newest)
-- returns: 1 if the contact was not in the list, 0 if it was moved
local removed = redis.call('LREM', KEYS[1], 0, ARGV[1])
redis.call('LPUSH', KEYS[1], ARGV[1])
redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[2]) - 1)
if removed == 0 then return 1 end
return 0
