-- Post a status: its record, the author's profile and own home timeline, and the author's post
-- counter in one step (Redis in Action §8.1.2 create_status and §8.4 post_status, which take
-- three separate steps, and the ch11 Lua create_status, which writes an undeclared key). The
-- status id is '<uid>:<n>' with n from the author's own counter: globally unique, and it names
-- the author, so the status lives under the author's hash tag. Retry-safe by a receipt under
-- the caller's token: the same post sent twice answers the first run's id and time, and adds
-- nothing (the counter and the id sequence moved once).
-- KEYS[1] user      HASH of the author (login, posts, status_seq)
-- KEYS[2] statuses  HASH status id -> JSON record
-- KEYS[3] profile   ZSET status id -> posted
-- KEYS[4] home      ZSET status id -> posted (the author's own home timeline)
-- ARGV[1] uid       ARGV[2] JSON object text {"message":..., "data":...}
-- ARGV[3] home_size how many entries a home timeline keeps
-- ARGV[4] token     the caller's, one per create_status call (the receipt's name)
-- returns: {status id, posted (server clock, text)}, or false if there is no such user
-- @include once
-- @include status_record
local kept = receipt(KEYS[1], ARGV[4])
if kept then
  return kept
end
local posted = write_status(KEYS[1], KEYS[2], ARGV[1], ARGV[2])
if not posted then
  return false
end
redis.call('ZADD', KEYS[3], posted[2], posted[1])
redis.call('ZADD', KEYS[4], posted[2], posted[1])
redis.call('ZREMRANGEBYRANK', KEYS[4], 0, -tonumber(ARGV[3]) - 1)
return remember(KEYS[1], ARGV[4], posted)
