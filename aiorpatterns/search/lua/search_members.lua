-- Return the ids of the documents that match a parsed query (Redis in Action §7.1.2).
-- KEYS[1] result    scratch SET (deleted before returning)
-- KEYS[2..]         the rest of the plan's keys (see _search_plan.lua)
-- ARGV[1..]         the plan (see _search_plan.lua)
-- returns: the matching document ids, in no particular order
-- @include search_plan
local result, temporary = plan_result(1, 1, false)
local ids = redis.call('SMEMBERS', result)
if temporary then
  redis.call('DEL', result)
end
return ids
