-- Delete a consumer from its group if it holds no unacknowledged entry (XGROUP DELCONSUMER
-- would drop its pending entries, and no other consumer could then reclaim them).
-- KEYS[1] stream   STREAM of entries
-- ARGV[1] group    the consumer group
-- ARGV[2] consumer the consumer's name
-- returns: 1 if deleted, 0 if it still holds entries (or the group is gone)
-- Safe to run twice as it is: a consumer already deleted holds nothing, and deleting it again
-- changes nothing, so a retry answers 1 again.
local stream, group, consumer = KEYS[1], ARGV[1], ARGV[2]
local pending = redis.pcall('XPENDING', stream, group, '-', '+', 1, consumer)
if type(pending) ~= 'table' or pending.err or #pending > 0 then return 0 end
redis.call('XGROUP', 'DELCONSUMER', stream, group, consumer)
return 1
