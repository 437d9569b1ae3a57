-- Combine posting SETs into a temporary SET that expires (Redis in Action §7.1.2, _set_common:
-- intersect, union, difference), atomically, so the result never lives without its TTL.
-- KEYS[1] dest      the temporary result SET
-- KEYS[2..]         the operands (posting SETs, or earlier results)
-- ARGV[1] op        'SINTERSTORE', 'SUNIONSTORE' or 'SDIFFSTORE'
-- ARGV[2] ttl_ms
-- returns: the number of members in the result
local count = redis.call(ARGV[1], KEYS[1], unpack(KEYS, 2))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return count
