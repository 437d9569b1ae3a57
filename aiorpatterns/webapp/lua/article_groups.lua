-- Add an article to groups and remove it from others (Redis in Action §1.3.3
-- add_remove_groups), dropping each changed group's cached pages so the change shows at once.
-- KEYS[1] time       ZSET id -> posted (to know the article exists)
-- KEYS[2..] for each group, three keys: its SET of ids, its score cache, its time cache
-- ARGV[1] id         the article
-- ARGV[2..]          for each group, in KEYS order: 'add' or 'remove'
-- returns: 1, or 0 (nothing changed) if the article does not exist
-- Retry-safe as it is: a second run adds and removes the same members and drops the same
-- caches, and answers the same.
local id = ARGV[1]
if not redis.call('ZSCORE', KEYS[1], id) then
  return 0
end
for i = 2, #ARGV do
  local base = 2 + (i - 2) * 3
  if ARGV[i] == 'add' then
    redis.call('SADD', KEYS[base], id)
  else
    redis.call('SREM', KEYS[base], id)
  end
  redis.call('DEL', KEYS[base + 1], KEYS[base + 2])
end
return 1
