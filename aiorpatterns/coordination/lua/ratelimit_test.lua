-- Whether `cost` units of a limited key would fit now, consuming nothing (see ratelimit_hit).
-- KEYS[1] state    HASH the strategy's state
-- KEYS[2] log      LIST the sliding log (sliding_log only; unused otherwise)
-- ARGV[1] strategy fixed_window | sliding_window | sliding_log | gcra
-- ARGV[2] limit    units per period
-- ARGV[3] period   us
-- ARGV[4] cost     units to test for (1 <= cost <= limit)
-- returns: {allowed (1/0), remaining, retry_after_us, reset_after_us, now_us}; remaining is
--          what is left now (nothing was consumed)
-- Reads only.
-- @include ratelimit

local _, state = read(ARGV[1], false)
local now = now_us()
local d = decide(ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), now, false, state)
return answer(d.ok, d.remaining, d.retry_at, d.reset_at, now)
