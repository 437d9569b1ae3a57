-- Post a status's record where its author lives (Redis in Action §10.3.3: users and statuses on
-- one server, timelines on others): the record and the post counter in one step; ShardedSocial
-- then adds the status to the author's timelines on their servers. Retry-safe by a receipt
-- under the caller's token: the same post sent twice answers the first run's id and time.
-- KEYS[1] user      HASH of the author (login, posts, status_seq)
-- KEYS[2] statuses  HASH status id -> JSON record
-- ARGV[1] uid       ARGV[2] JSON object text {"message":..., "data":...}
-- ARGV[3] token     the caller's, one per create_status call (the receipt's name)
-- returns: {status id, posted (server clock, text)}, or false if there is no such user
-- @include once
-- @include status_record
local kept = receipt(KEYS[1], ARGV[3])
if kept then
  return kept
end
local posted = write_status(KEYS[1], KEYS[2], ARGV[1], ARGV[2])
if not posted then
  return false
end
return remember(KEYS[1], ARGV[3], posted)
