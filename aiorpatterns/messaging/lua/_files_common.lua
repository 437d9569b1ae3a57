-- Shared part of the file-distribution scripts (inlined by "-- @include files_common").
-- Every key of one channel shares the channel's hash tag:
--   RUN       HASH id (the distribution's id), count (consumers), files (numbers given out),
--             chat ("1" once its chat exists), done ("1" once "done" is announced)
--   NAMES     HASH file name -> number: a sender that runs again finds what it did
--   SIZES     HASH number -> size in bytes, for every file held in Redis (reserved, being
--             copied, or waiting for consumers); a number absent here was finished by all
--   HELD      STRING bytes reserved by the files in SIZES: the budget the sender keeps under
--             its limit
--   SIGNAL    STREAM of one entry (XADD MAXLEN 1) whose id <ms>-0 is the channel's last event
--             (a run begun, its chat ready, a file released): waiters block in XREAD above the
--             id they last saw (core/wakeup.py), so nobody polls
--   ANNOUNCED SET of numbers whose announcement went out (kept until the run ends, so a
--             sender never takes a file finished meanwhile for one never announced)

-- @include clock

-- The id of the channel's last event (0 if none).
local function last_event()
  local last = redis.call('XREVRANGE', SIGNAL, '+', '-', 'COUNT', 1)
  if last[1] then return tonumber(string.match(last[1][1], '^(%d+)')) end
  return 0
end
