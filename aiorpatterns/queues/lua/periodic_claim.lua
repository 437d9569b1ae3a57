-- Settle each tick of a periodic task once, whatever number of schedulers run (Redis in Action
-- §6.4.2: tasks due at a time, here due on a clock instead of waiting in a ZSET).
-- KEYS[1] periodic  HASH entry name -> "<tick>": every tick up to it is settled, or
--                   "<tick> <token> <lease end>": that tick is claimed by token, its put not yet
--                   confirmed (another scheduler may take the claim over once the lease ends)
-- ARGV[1] mode      'read', 'claim' or 'confirm'
-- read:    ARGV[2..] entry names
--          returns {now, then per entry: settled tick, 1 if its claim is unconfirmed else 0};
--          an entry seen for the first time is settled up to now (no tick from before it existed)
-- claim:   ARGV[2] entry, ARGV[3] tick, ARGV[4] token, ARGV[5] lease ms
--          returns {1, t}: tick t is the caller's, put it and confirm it (t is an older tick
--          when the entry had an unconfirmed claim: the caller's own, or one whose lease ended);
--          {0, settled}: the tick is settled already; {-1, ms}: another scheduler is putting a
--          tick of this entry, ask again (its lease ends in ms)
-- confirm: ARGV[2] entry, ARGV[3] tick, ARGV[4] token
--          returns 1 if the tick is settled, 0 if another scheduler took the claim over
-- Times are the server's clock in ms. Run twice (a client retry), each mode answers as it did
-- once: a claim finds its own token holding the tick, a confirm finds the tick settled.

local PERIODIC, mode = KEYS[1], ARGV[1]

-- @include clock

-- settled tick, and the claim's token and lease end while it is unconfirmed
local function parse(value)
  if not value then return nil end
  local tick, token, lease = string.match(value, '^(%d+) (%w+) (%d+)$')
  if tick then return tonumber(tick), token, tonumber(lease) end
  return tonumber(value), nil, nil
end

local function hold(entry, tick, token, lease_end)
  redis.call('HSET', PERIODIC, entry, int(tick) .. ' ' .. token .. ' ' .. int(lease_end))
end

if mode == 'read' then
  local now = now_ms()
  local reply = {int(now)}
  for i = 2, #ARGV do
    local value = redis.call('HGET', PERIODIC, ARGV[i])
    if not value then
      value = int(now)
      redis.call('HSET', PERIODIC, ARGV[i], value)
    end
    local settled, token = parse(value)
    reply[#reply + 1] = int(settled)
    reply[#reply + 1] = token and 1 or 0
  end
  return reply
end

local entry, tick, token = ARGV[2], tonumber(ARGV[3]), ARGV[4]
local settled, owner, lease_end = parse(redis.call('HGET', PERIODIC, entry))

if mode == 'claim' then
  local now = now_ms()
  if owner then
    -- An unconfirmed claim comes first: its put may never have happened.
    if owner ~= token then
      if lease_end > now then return {-1, int(lease_end - now)} end
      hold(entry, settled, token, now + tonumber(ARGV[5]))
    end
    return {1, int(settled)}
  end
  if settled and settled >= tick then return {0, int(settled)} end
  hold(entry, tick, token, now + tonumber(ARGV[5]))
  return {1, int(tick)}
end

if mode == 'confirm' then
  if owner == token and settled == tick then
    redis.call('HSET', PERIODIC, entry, int(tick))
    return 1
  end
  -- Settled already (a re-sent confirm), or a later tick was claimed since, which needs this one
  -- confirmed first: 0 only while another scheduler holds this very tick.
  if settled and (settled > tick or (settled == tick and not owner)) then return 1 end
  return 0
end

return redis.error_reply('periodic_claim: unknown mode ' .. tostring(mode))
