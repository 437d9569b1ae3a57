-- Whether a token holds a semaphore slot right now (Redis in Action §6.3; Lock.owned's sibling).
-- KEYS[1] holders  ZSET holder token -> end of its lease (server time, ms)
-- KEYS[2..] owners ZSETs that must list the token too (the fair semaphore's owner ZSET)
-- ARGV[1] token    the caller's token
-- returns: 1 if the token's lease has not ended (and every other ZSET lists it), else 0
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ends = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1]) or '0')
if ends <= now then return 0 end
for i = 2, #KEYS do
  if not redis.call('ZSCORE', KEYS[i], ARGV[1]) then return 0 end
end
return 1
