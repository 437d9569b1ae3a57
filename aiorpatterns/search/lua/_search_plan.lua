-- Shared query evaluation of the search scripts (inlined by "-- @include search_plan").
-- A parsed query arrives as a plan. ARGV from index a: the number of synonym groups G, the size
-- of each group, then the number of excluded words X. KEYS from index k: the result key R, then
-- for each group a scratch key (only if the group has more than one word) followed by the
-- group's posting SETs, then the X excluded words' posting SETs. All of them share the index's
-- hash tag, so the whole query runs on one node (Redis in Action §7.1.2, parse_and_search).

-- Evaluate the plan. Each multi-word group is unioned into its scratch key, the groups are
-- intersected into R and the excluded words subtracted from R. Scratch keys are deleted before
-- returning. Returns the key that holds the result and whether it is R: a query of one word with
-- no exclusions is answered by that word's own posting SET, unless store is true.
local function plan_result(k, a, store)
  local groups = tonumber(ARGV[a])
  local ki = k + 1
  local operands, scratch = {}, {}
  for g = 1, groups do
    local size = tonumber(ARGV[a + g])
    if size == 1 then
      operands[g] = KEYS[ki]
      ki = ki + 1
    else
      local dest = KEYS[ki]
      redis.call('SUNIONSTORE', dest, unpack(KEYS, ki + 1, ki + size))
      scratch[#scratch + 1] = dest
      operands[g] = dest
      ki = ki + size + 1
    end
  end
  local excluded = tonumber(ARGV[a + groups + 1])
  if groups == 1 and excluded == 0 and #scratch == 0 and not store then
    return operands[1], false
  end
  local result = KEYS[k]
  redis.call('SINTERSTORE', result, unpack(operands))
  if excluded > 0 then
    redis.call('SDIFFSTORE', result, result, unpack(KEYS, ki, ki + excluded - 1))
  end
  if #scratch > 0 then
    redis.call('DEL', unpack(scratch))
  end
  return result, true
end
