-- Keep the most viewed items and halve their counts, in one step (Redis in Action §2.5
-- rescale_viewed: ZREMRANGEBYRANK then ZINTERSTORE with a weight, two commands in the book).
-- KEYS[1] viewed   ZSET item -> minus its (decayed) number of views
-- ARGV[1] keep     how many items stay (the most viewed)
-- ARGV[2] factor   what the remaining counts are multiplied by
-- returns: how many items remain
redis.call('ZREMRANGEBYRANK', KEYS[1], tonumber(ARGV[1]), -1)
redis.call('ZINTERSTORE', KEYS[1], 1, KEYS[1], 'WEIGHTS', ARGV[2])
return redis.call('ZCARD', KEYS[1])
