-- Rate limiting: the writes the hit and refund scripts share (inlined by
-- "-- @include ratelimit_keep", after "-- @include ratelimit").

-- Write `state` (field, number, ... ; may be empty: the numbers are written with int() here,
-- so a denial, which writes nothing, never formats them) and keep `text` as the receipt of
-- `call`, in one HSET: in the call's own slot `j` if it has one, else in the ring's next slot
-- (dropping the receipt that slot held: at most RECENT receipts per limited key). `ring` is what
-- read() read.
local function keep(ring, j, call, text, state)
  local fields = {}
  for n = 1, #state, 2 do
    fields[n], fields[n + 1] = state[n], int(state[n + 1])
  end
  if not j then
    j = tonumber(ring[1] or '0')
    fields[#fields + 1] = 'i'
    fields[#fields + 1] = int((j + 1) % RECENT)
  end
  fields[#fields + 1] = 'k' .. int(j)
  fields[#fields + 1] = call .. ' ' .. text
  redis.call('HSET', KEYS[1], unpack(fields))
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
