-- Receipts: run a step once per caller token, however often a client retry sends it
-- (inlined by "-- @include once").
-- A step whose second run cannot recognise its first from the data alone (an INCR'd id, a
-- message appended, a counter added to) keeps its reply for RECEIPT_MS under the caller's token:
-- the same call sent again (redis-py's Retry after a lost reply, the cluster client on MOVED or
-- a connection error) finds the receipt and answers the same reply, writing nothing.
-- The receipt of token T lives at "<base>:<T>", where <base> is a declared key of the script:
-- it embeds that key's hash tag, so it is in the same slot (Redis Cluster allows same-slot
-- keys in a script) and under the same prefix (an ACL user limited to it may write it).
-- Replies are kept as cjson text: numbers up to 2^53 and strings survive as they were sent.

-- Longer than redis-py's whole retry schedule (a few tries with backoff capped at seconds).
local RECEIPT_MS = 120000

-- The reply kept for `token` under `base`, or nil when this token's step has not run.
local function receipt(base, token)
  local kept = redis.call('GET', base .. ':' .. token)
  if kept then return cjson.decode(kept) end
  return nil
end

-- Keep `reply` as this token's receipt and return it (so a step ends "return remember(...)").
local function remember(base, token, reply)
  redis.call('SET', base .. ':' .. token, cjson.encode(reply), 'PX', RECEIPT_MS)
  return reply
end
