-- Store the result SET of a parsed query, for SORT to read (Redis in Action §7.1.2, §7.2.1).
-- KEYS[1] result    SET the matching document ids are stored in (a temporary key)
-- KEYS[2..]         the rest of the plan's keys (see _search_plan.lua)
-- ARGV[1] ttl_ms    how long the result may live if the caller never deletes it
-- ARGV[2..]         the plan (see _search_plan.lua)
-- returns: the number of matching documents
-- @include search_plan
local result = plan_result(1, 2, true)
redis.call('PEXPIRE', result, ARGV[1])
return redis.call('SCARD', result)
