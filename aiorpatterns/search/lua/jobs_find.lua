-- Find every job whose requirements a candidate meets (Redis in Action §7.4.2, find_jobs, and the
-- level and years variants). Each candidate skill contributes one posting; a job's count is the
-- number of its skills the candidate meets, and the job qualifies when that count reaches the
-- number of skills it requires (req - count <= 0).
-- KEYS[1] req       ZSET job -> number of distinct skills it requires
-- KEYS[2] all       SET of every indexed job
-- KEYS[3] count     scratch ZSET (deleted before returning)
-- KEYS[4] scratch   scratch ZSET (deleted before returning)
-- KEYS[5..]         one posting per candidate skill: a SET of the jobs whose requirement for the
--                   skill the candidate meets ('sets'), or the skill's ZSET job -> years ('years')
-- ARGV[1] mode      'sets' or 'years'
-- ARGV[2..]         'years' only: the candidate's years for each posting, in order
-- returns: the ids of the qualifying jobs
local req, all, count, scratch = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
if ARGV[1] == 'sets' then
  redis.call('ZUNIONSTORE', count, #KEYS - 4, unpack(KEYS, 5))
else
  for i = 5, #KEYS do
    -- required years minus the candidate's (a SET member scores 1, times -years)
    redis.call('ZINTERSTORE', scratch, 2, all, KEYS[i], 'WEIGHTS', '-' .. ARGV[i - 3], 1)
    redis.call('ZREMRANGEBYSCORE', scratch, '(0', '+inf')
    -- what is left is met: count 1 for it
    redis.call('ZINTERSTORE', scratch, 2, all, scratch, 'WEIGHTS', 1, 0)
    redis.call('ZUNIONSTORE', count, 2, count, scratch)
  end
end
redis.call('ZINTERSTORE', count, 2, count, req, 'WEIGHTS', -1, 1)
local jobs = redis.call('ZRANGEBYSCORE', count, '-inf', 0)
redis.call('DEL', count, scratch)
return jobs
