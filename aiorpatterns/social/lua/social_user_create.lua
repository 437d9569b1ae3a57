-- Write a new user's record once its login is claimed (Redis in Action §8.1.1 create_user).
-- Retry-safe from the data: a record that exists is left alone (the caller ignores the reply).
-- KEYS[1] user    HASH {login, id, name, followers, following, posts, signup, status_seq}
-- ARGV[1] uid     ARGV[2] login (as given)     ARGV[3] name
-- returns: 1 if the record was written, 0 if it existed
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
local t = redis.call('TIME')
local now = t[1] .. '.' .. string.format('%06d', tonumber(t[2]))
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'login', ARGV[2], 'name', ARGV[3],
  'followers', 0, 'following', 0, 'posts', 0, 'signup', now, 'status_seq', 0)
return 1
