-- Rate limiting: the writes the hit and refund scripts share (inlined by
-- "-- @include ratelimit_keep", after "-- @include ratelimit").

-- Keep `text` as the receipt of `call`, in the next slot of the ring (dropping the receipt of
-- the call that slot held: at most RECENT receipts per limited key).
local function keep(call, text)
  local i = tonumber(redis.call('HGET', KEYS[1], 'i') or '0')
  local slot = 's' .. int(i)
  local old = redis.call('HGET', KEYS[1], slot)
  if old then redis.call('HDEL', KEYS[1], 'r:' .. old) end
  redis.call('HSET', KEYS[1], slot, call, 'r:' .. call, text, 'i', int((i + 1) % RECENT))
end

-- Let the HASH live for `us` more microseconds (what its state needs), and at least GRACE_MS
-- (what its receipts need); never shorten it.
local function hold(us)
  local ms = math.max(GRACE_MS, math.ceil(us / 1000))
  if redis.call('PTTL', KEYS[1]) < ms then redis.call('PEXPIRE', KEYS[1], int(ms)) end
end

-- LPUSH `cost` entries `time` on the sliding log, in batches (unpack has a limit on how many
-- values it returns).
local function log_push(time, cost)
  local batch = {}
  for i = 1, cost do
    batch[#batch + 1] = time
    if #batch >= 1000 or i == cost then
      redis.call('LPUSH', KEYS[2], unpack(batch))
      batch = {}
    end
  end
end
