-- Consume `cost` units of a limited key if they fit (rate limiting; compare Redis in Action
-- §5.2.1's time-bucketed counters and §6.3.1's ZSET of timestamps, here on the server's clock).
-- KEYS[1] state    HASH the strategy's state, and the receipts of the last calls
-- KEYS[2] log      LIST server time (us) per unit, newest first (sliding_log only; else unused)
-- ARGV[1] strategy fixed_window | sliding_window | sliding_log | gcra
-- ARGV[2] limit    units per period
-- ARGV[3] period   us
-- ARGV[4] cost     units this hit takes (1 <= cost <= limit)
-- ARGV[5] call     a fresh id per hit() call
-- returns: {allowed (1/0), remaining, retry_after_us, reset_after_us, now_us}
-- Safe to run twice: a hit that consumed keeps its reply as the call's receipt in KEYS[1]; the
-- same call sent again (a client retry after a lost reply) answers that reply and consumes
-- nothing. A denied hit consumed nothing and writes nothing: sent again, it is decided again.
-- A call refunded meanwhile (its caller was cancelled) answers "not allowed", consuming nothing.
-- @include ratelimit
-- @include ratelimit_keep

local strategy, call = ARGV[1], ARGV[5]
local limit, period, cost = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local ring, state = read(strategy, true)
local _, kept = recall(ring, call)
if type(kept) == 'string' then return answer(false, 0, 0, 0, now_us()) end  -- refunded
if kept then return answer(kept[1] == 1, kept[2], kept[3], kept[4], kept[5]) end

local now = now_us()
local d = decide(strategy, limit, period, cost, now, true, state)
if strategy == 'sliding_log' then
  if d.n > d.count then redis.call('RPOP', KEYS[2], d.n - d.count) end  -- the expired, oldest
  if d.ok then
    log_push(int(now), cost)
    redis.call('PEXPIRE', KEYS[2], int(math.ceil(period / 1000)))
  end
end
if d.ok then
  -- The sliding log's HASH holds receipts only: its state lives (and expires) in the LIST.
  keep(ring, nil, call, receipt_text(d, now), d.state or {})
  if strategy == 'sliding_log' then hold(0) else hold(d.reset_at - now) end
end
return answer(d.ok, d.remaining, d.retry_at, d.reset_at, now)
