-- A status's record and its author's post counter (inlined by "-- @include status_record"):
-- the part of posting and deleting that lives with the author, shared by Social's steps (which
-- also write the author's timelines) and ShardedSocial's (whose timelines are on other servers,
-- Redis in Action §10.3.3).

-- Write the record of a new status of `uid` (JSON object text `payload`, {"message", "data"})
-- and count it; returns {status id, posted (server clock, text)}, or false if no such user.
local function write_status(user, statuses, uid, payload)
  local login = redis.call('HGET', user, 'login')
  if not login then
    return false
  end
  local n = redis.call('HINCRBY', user, 'status_seq', 1)
  local t = redis.call('TIME')
  -- Built as text: a Lua number would round a microsecond timestamp to 14 digits.
  local now = t[1] .. '.' .. string.format('%06d', tonumber(t[2]))
  local sid = uid .. ':' .. n
  local record = '{"posted":' .. now .. ',"login":' .. cjson.encode(login) .. ','
    .. string.sub(payload, 2)
  redis.call('HSET', statuses, sid, record)
  redis.call('HINCRBY', user, 'posts', 1)
  return {sid, now}
end

-- Remove the record of status `sid` and uncount it; false if the author has no such status.
local function erase_status(user, statuses, sid)
  if redis.call('HDEL', statuses, sid) == 0 then
    return false
  end
  redis.call('HINCRBY', user, 'posts', -1)
  return true
end
