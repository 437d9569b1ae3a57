-- The event step of the file-distribution scripts that wake waiters (inlined by
-- "-- @include files_event", after "-- @include files_common").

-- Record an event: its id is the server's clock in ms, above the last one, so a waiter's
-- position from an earlier run (whose stream is gone) is still below every new event.
local function event()
  local id = math.max(now_ms(), last_event() + 1)
  redis.call('XADD', SIGNAL, 'MAXLEN', 1, int(id) .. '-0', 'e', 1)
  return id
end
