-- Count the holders of a semaphore whose lease has not ended (Redis in Action §6.3).
-- KEYS[1] holders  ZSET holder token -> end of its lease (server time, ms)
-- returns: the number of live holders
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')
