-- Rate limiting: the server's clock, the four strategies' decisions and the receipts of recent
-- calls (inlined by "-- @include ratelimit"). Nothing here writes: the hit and refund scripts do
-- (with "-- @include ratelimit_keep"), so ratelimit_test, which peeks, writes nothing.
--
-- KEYS[1] is the limited key's HASH: the strategy's state and the receipts; KEYS[2] the sliding
-- log's LIST (one entry per unit: its server time in us, newest first). Every time is a whole number of
-- microseconds on the server's clock (TIME), below 2^53, so Lua's doubles hold it exactly, and
-- every number stored is written with int() (never Lua's "%.14g", which rounds big ones).
--
-- A decision is a table {ok, remaining, retry_at, reset_at} plus the strategy's new state
-- (`state`: the HASH fields and numbers to write when the hit consumes): whether `cost` fits now, how many
-- single units are left (after this hit, if it consumes), when `cost` would fit (retry_at, = now
-- when it fits), and when the key is back to full capacity (reset_at: the state is needed until
-- then, and no longer). A strategy is handed the HASH fields it reads (FIELDS), read with the
-- ring in one HMGET.
--
-- Receipts: each hit that consumed keeps its reply in the HASH, in a ring of RECENT slots
-- ("k<j>" = "<call> <ok> <remaining> <retry_at> <reset_at> <now>", absolute times; "i" -> the
-- next slot): the same call sent again (a client retry after a lost reply) finds it and answers
-- the same reply, consuming nothing more. A refunded call's slot says "<call> -1" (its units were
-- given back) or "<call> -0" (none were). A denied hit keeps no receipt: it consumed nothing, so
-- running it again is as if it came later (and writes nothing: a hot key's denials cost no
-- writes).

local RECENT = 8
-- Shortest life (ms) of a HASH that holds receipts: longer than redis-py's default retry
-- schedule (10 retries, backoff doubling from 10 ms, capped at 1 s: about 5 s in all).
local GRACE_MS = 10000

local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

-- A whole number as text, all of its digits.
local function int(x)
  return string.format('%d', x)
end

-- Fixed window: windows aligned on multiples of the period since the epoch, one count each.
local function fixed(limit, period, cost, now, consume, f)
  local w = now - math.fmod(now, period)
  local n = 0
  if tonumber(f[1]) == w then n = tonumber(f[2]) or 0 end
  local ok = n + cost <= limit
  if ok and consume then n = n + cost end
  local d = {ok = ok, remaining = limit - n, retry_at = now, reset_at = now}
  d.state = {'w', w, 'n', n}
  if not ok then d.retry_at = w + period end
  if n > 0 then d.reset_at = w + period end
  return d
end

-- The previous window's count as the sliding window weighs it, `e` us into the current one.
local function weighed(count, e, period)
  return math.floor(count * (period - e) / period)
end

-- The first e in [0, period] at which weighed(count, e) <= room (it is 0 at e = period).
local function decayed(count, room, period)
  if count <= room then return 0 end
  local e = math.floor(period - (room + 1) * period / count) + 1
  if e < 0 then e = 0 end
  if e > period then e = period end
  -- The estimate above is a double; settle it on the exact test the decision makes.
  while e > 0 and weighed(count, e - 1, period) <= room do e = e - 1 end
  while weighed(count, e, period) > room do e = e + 1 end
  return e
end

-- Sliding window (two counters): this window's count plus the previous window's, weighed by
-- the share of the previous window still inside the sliding period, rounded down.
local function sliding(limit, period, cost, now, consume, f)
  local w = now - math.fmod(now, period)
  local since, c, p = tonumber(f[1]), tonumber(f[2]) or 0, tonumber(f[3]) or 0
  if since ~= w then
    if since == w - period then p = c else p = 0 end
    c = 0
  end
  local e = now - w
  local before = weighed(p, e, period)
  local ok = before + c + cost <= limit
  if ok and consume then c = c + cost end
  local d = {ok = ok, retry_at = now, reset_at = now}
  d.state = {'w', w, 'c', c, 'p', p}
  d.remaining = math.max(0, limit - before - c)
  if not ok then
    local room = limit - cost
    if c <= room then
      d.retry_at = w + decayed(p, room - c, period)
    else  -- not in this window: in the next, this window's count is the previous one
      d.retry_at = w + period + decayed(c, room, period)
    end
  end
  if c > 0 then
    d.reset_at = w + period + decayed(c, 0, period)
  elseif before > 0 then
    d.reset_at = w + decayed(p, 0, period)
  end
  return d
end

-- GCRA: the theoretical arrival time (TAT) moves on by T = period / limit per unit, and a hit
-- fits if TAT stays within one period of now. T is kept exact as q + rr / limit, and the TAT
-- as t + r / limit (t whole us, 0 <= r < limit): the numbers stay below 2^53 for any limit up
-- to 10^7 and any period up to 10^9 s, so every comparison is exact.
local function gcra_add(t, r, n, q, rr, limit)
  local x = r + n * rr
  local carry = math.floor(x / limit)
  return t + n * q + carry, x - carry * limit
end

local function gcra(limit, period, cost, now, consume, f)
  local q, rr = math.floor(period / limit), math.fmod(period, limit)
  local t, r = tonumber(f[1]), tonumber(f[2]) or 0
  if not t or t < now then t, r = now, 0 end  -- a TAT in the past: the bucket is empty
  local edge = now + period
  local function fits(n)
    local nt, nr = gcra_add(t, r, n, q, rr, limit)
    return nt < edge or (nt == edge and nr == 0)
  end
  local ok = fits(cost)
  local nt, nr = gcra_add(t, r, cost, q, rr, limit)
  if ok and consume then t, r = nt, nr end  -- fits() now counts from the new TAT
  local d = {ok = ok, retry_at = now, state = {'t', t, 'r', r}}
  if not ok then
    d.retry_at = nt - period
    if nr > 0 then d.retry_at = d.retry_at + 1 end
  end
  d.reset_at = t
  if r > 0 then d.reset_at = t + 1 end
  -- Units left: estimated in doubles, then settled on the exact test.
  local n = math.floor(((edge - t) * limit - r) / period)
  if n < 0 then n = 0 end
  if n > limit then n = limit end
  while n > 0 and not fits(n) do n = n - 1 end
  while n < limit and fits(n + 1) do n = n + 1 end
  d.remaining = n
  return d
end

-- Sliding log: every unit admitted in the last period is an entry of a LIST, its server time,
-- newest first (the clock only moves on, so the LIST stays sorted); exact, and O(limit) memory
-- per key (about 11 bytes a unit: listpack nodes hold the times as integers).

-- How many entries, from the newest, are later than `edge` (a binary search on the sorted LIST).
local function log_live(n, edge)
  local low, high = 0, n
  while low < high do
    local mid = math.floor((low + high) / 2)
    if tonumber(redis.call('LINDEX', KEYS[2], mid)) > edge then low = mid + 1 else high = mid end
  end
  return low
end

local function sliding_log(limit, period, cost, now, consume, _)
  local n = redis.call('LLEN', KEYS[2])
  local count = log_live(n, now - period)  -- entries at or before now - period are out
  local ok = count + cost <= limit
  local after = count
  if ok and consume then after = count + cost end
  local d = {ok = ok, n = n, count = count, remaining = limit - after, retry_at = now,
    reset_at = now}
  if not ok then  -- the entry whose leaving makes room: the (count + cost - limit)-th oldest
    d.retry_at = tonumber(redis.call('LINDEX', KEYS[2], limit - cost)) + period
  end
  if after > count then
    d.reset_at = now + period
  elseif count > 0 then
    d.reset_at = tonumber(redis.call('LINDEX', KEYS[2], 0)) + period
  end
  return d
end

local STRATEGIES = {
  fixed_window = fixed,
  sliding_window = sliding,
  gcra = gcra,
  sliding_log = sliding_log,
}
-- The HASH fields each strategy reads (the sliding log's state is its LIST).
local FIELDS = {
  fixed_window = {'w', 'n'},
  sliding_window = {'w', 'c', 'p'},
  gcra = {'t', 'r'},
  sliding_log = {},
}

-- One HMGET: with `ring`, the ring ({i, k0 .. k7}: RECENT slots, named literally, as building
-- the names costs more than the read) then the strategy's fields; answers the ring (the whole
-- reply: the fields follow its RECENT + 1 entries) and the fields apart (the ring is {} without
-- `ring`).
local function read(strategy, ring)
  local fields = FIELDS[strategy]
  if not fields then error('unknown rate-limit strategy ' .. tostring(strategy)) end
  if not ring then
    if #fields == 0 then return {}, {} end
    return {}, redis.call('HMGET', KEYS[1], unpack(fields))
  end
  local got = redis.call('HMGET', KEYS[1], 'i', 'k0', 'k1', 'k2', 'k3', 'k4', 'k5', 'k6', 'k7',
    unpack(fields))
  local state = {}
  for j = 1, #fields do state[j] = got[RECENT + 1 + j] end
  return got, state
end

local function decide(strategy, limit, period, cost, now, consume, state)
  return STRATEGIES[strategy](limit, period, cost, now, consume, state)
end

-- The reply to the caller: {ok, remaining, retry_after, reset_after, now} (us).
local function answer(ok, remaining, retry_at, reset_at, now)
  local flag = 0
  if ok then flag = 1 end
  return {flag, remaining, math.max(0, retry_at - now), math.max(0, reset_at - now), now}
end

local function receipt_text(d, now)
  local flag = '0'
  if d.ok then flag = '1' end
  return flag .. ' ' .. int(d.remaining) .. ' ' .. int(d.retry_at) .. ' ' .. int(d.reset_at)
    .. ' ' .. int(now)
end

-- The receipt kept for `call` in the ring read by read(): the slot (0 .. RECENT-1) that holds
-- it, and the receipt as numbers {ok, remaining, retry_at, reset_at, now}, or for a refunded call
-- the text "-1" (units were given back) or "-0" (none were); nil when this call has no receipt.
local function recall(ring, call)
  local prefix = call .. ' '
  for j = 0, RECENT - 1 do
    local kept = ring[j + 2]
    if kept and string.sub(kept, 1, #prefix) == prefix then
      local text = string.sub(kept, #prefix + 1)
      if string.sub(text, 1, 1) == '-' then return j, text end
      local v = {}
      for word in string.gmatch(text, '%S+') do v[#v + 1] = tonumber(word) end
      return j, v
    end
  end
  return nil, nil
end
