-- Shared part of the inbox scripts (inlined by "-- @include inbox_common").
-- Every inbox script takes the same six KEYS, all under the recipient's one hash tag:
--   MESSAGES  LIST envelope JSON, oldest first: the book's mailbox (Redis in Action §6.5.1)
--   HELD      HASH receive token -> envelope: messages handed to a receiver, not yet acked
--   LEASES    ZSET receive token -> lease deadline (server ms)
--   SIGNAL    LIST wake-up tokens for blocked receivers (short, expires)
--   ABANDONED ZSET receive token -> end of its tombstone (server ms)
--   SEQ       STRING id of the last message sent (never expires)
local MESSAGES, HELD, LEASES, SIGNAL, ABANDONED, SEQ =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]

-- Enough tokens to wake every receiver a burst of sends can keep busy; beyond that, receivers
-- find messages by re-checking before they block again.
local SIGNAL_CAP = 64
local SIGNAL_TTL_MS = 60000

-- @include clock

local function wake(n)
  if n < 1 then return end
  if n > SIGNAL_CAP then n = SIGNAL_CAP end
  local tokens = {}
  for i = 1, n do tokens[i] = '1' end
  redis.call('LPUSH', SIGNAL, unpack(tokens))
  redis.call('LTRIM', SIGNAL, 0, SIGNAL_CAP - 1)
  redis.call('PEXPIRE', SIGNAL, SIGNAL_TTL_MS)
end

local function envelope_id(envelope)
  return tonumber(string.match(envelope, '^{"id":(%d+),'))
end

-- Put held messages back at the head of the mailbox, lowest id first, so a message given back
-- or taken from a dead receiver is the next one delivered.
local function give_back(tokens)
  local back = {}
  for _, token in ipairs(tokens) do
    local envelope = redis.call('HGET', HELD, token)
    if envelope then back[#back + 1] = envelope end
    redis.call('HDEL', HELD, token)
    redis.call('ZREM', LEASES, token)
  end
  table.sort(back, function(a, b) return envelope_id(a) > envelope_id(b) end)
  for _, envelope in ipairs(back) do redis.call('LPUSH', MESSAGES, envelope) end
  return #back
end
