-- Give back what a hit consumed, for a caller cancelled (or failed) while its hit was in flight.
-- KEYS[1] state    HASH the strategy's state, and the receipts of the last calls
-- KEYS[2] log      LIST the sliding log (sliding_log only; unused otherwise)
-- ARGV[1] strategy fixed_window | sliding_window | sliding_log | gcra
-- ARGV[2] limit    units per period
-- ARGV[3] period   us
-- ARGV[4] cost     units the hit took
-- ARGV[5] call     the hit's call id
-- ARGV[6] at       the hit's server time (us) if the caller saw it allowed, else 0 (unknown)
-- returns: 1 if units were given back, else 0
-- The call's receipt says whether (and when) the hit consumed; without one (the hit has not
-- run, or it ran RECENT calls ago) only a known allowed hit (ARGV[6]) is undone. Either way the
-- call's receipt becomes "-1" or "-0": a hit of this call that runs later (sent before the
-- refund, on another connection) then consumes nothing.
-- Safe to run twice: a second run finds that receipt, answers as the first did and gives back
-- nothing more.
-- @include ratelimit
-- @include ratelimit_keep

local strategy, call = ARGV[1], ARGV[5]
local limit, period, cost = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local ring, f = read(strategy, true)
local j, kept = recall(ring, call)
if type(kept) == 'string' then return tonumber(string.sub(kept, 2)) end  -- refunded already
local at = tonumber(ARGV[6])
if kept then
  at = 0
  if kept[1] == 1 then at = kept[5] end
end

local undo = {}  -- the state fields given back, written with the receipt
if at > 0 then
  local w = at - math.fmod(at, period)
  if strategy == 'sliding_log' then  -- entries of one time are alike: any `cost` of them
    redis.call('LREM', KEYS[2], cost, int(at))
  elseif strategy == 'fixed_window' then
    if tonumber(f[1]) == w then undo = {'n', math.max(0, tonumber(f[2]) - cost)} end
  elseif strategy == 'sliding_window' then
    local since = tonumber(f[1])
    if since == w then
      undo = {'c', math.max(0, tonumber(f[2]) - cost)}
    elseif since == w + period then
      undo = {'p', math.max(0, tonumber(f[3]) - cost)}
    end
  elseif f[1] then
    local q, rr = math.floor(period / limit), math.fmod(period, limit)
    local x = tonumber(f[2]) - cost * rr
    local borrow = math.floor(x / limit)
    undo = {'t', tonumber(f[1]) - cost * q + borrow, 'r', x - borrow * limit}
  end
end
local given = 0
if at > 0 then given = 1 end
keep(ring, j, call, '-' .. given, undo)
hold(0)
return given
