-- Read a channel's distribution and its last event in one step (reads only).
-- KEYS[1] run      HASH the distribution (see _files_common.lua for the channel's keys)
-- KEYS[2] signal   STREAM the channel's last event
-- returns: {run id or false, count, chat ready 0/1, last event id}
local RUN, SIGNAL = KEYS[1], KEYS[2]
-- @include files_common

local got = redis.call('HMGET', RUN, 'id', 'count', 'chat')
return {got[1], tonumber(got[2] or '0'), got[3] and 1 or 0, last_event()}
