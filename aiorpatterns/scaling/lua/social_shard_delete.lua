-- Delete a status's record where its author lives (Redis in Action §8.4 delete_status, on the
-- sharded layout of §10.3.3): the record and the post counter in one step; ShardedSocial then
-- takes the status out of the author's timelines on their servers. Retry-safe by a receipt: a
-- delete sent twice answers 1 again and uncounts once.
-- KEYS[1] user      HASH of the author
-- KEYS[2] statuses  HASH status id -> JSON record
-- ARGV[1] status id  ARGV[2] token, the caller's, one per delete_status call
-- returns: 1 if the status was deleted, 0 if the author has no such status
-- @include once
-- @include status_record
local kept = receipt(KEYS[1], ARGV[2])
if kept then
  return kept
end
if not erase_status(KEYS[1], KEYS[2], ARGV[1]) then
  return 0
end
return remember(KEYS[1], ARGV[2], 1)
