-- withdraw_sold: Postgres holds live reservations on these units; take any of them that
-- Redis still offers out of stock (counted confirmed) and mark their customers' slots in
-- use. A unit held by a hold now is left to that hold: its confirm is refused, and
-- confirm_abort counts the unit confirmed then. Mends what a disagreement left behind
-- (a confirm that committed after Redis let its hold go); harmless when Redis is right.
-- KEYS: meta free fresh cust confirmed
-- ARGV: 1 the `suspect` mark to clear afterwards if it is still the same ('' : none),
--       then per unit four values: "store:sku", unit number, registration id, slot (-1: none)
-- Returns the number of units withdrawn.
local mark = ARGV[1]
local withdrawn = 0

-- Takes `unit` out of the pair's fresh run [n, t): the units below it in the run go into
-- the free set (every free-set member stays below n), the run starts after it.
local function from_run(pair, unit)
  local run = redis.call('HMGET', K_FRESH, pair .. ':n', pair .. ':t')
  local n, t = tonumber(run[1] or 0), tonumber(run[2] or 0)
  if unit < n or unit >= t then return false end
  for u = n, unit - 1 do redis.call('ZADD', K_FREE, 0, pair_member(pair, u)) end
  redis.call('HSET', K_FRESH, pair .. ':n', string.format('%d', unit + 1))
  redis.call('HINCRBY', K_FRESH, '#', string.format('%d', -(unit - n + 1)))
  return true
end

for i = 2, #ARGV, 4 do
  local pair, unit, reg, slot = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2], tonumber(ARGV[i + 3])
  if redis.call('ZREM', K_FREE, pair_member(pair, unit)) == 1 or from_run(pair, unit) then
    redis.call('HINCRBY', K_CONFIRMED, pair, 1)
    withdrawn = withdrawn + 1
  end
  if slot >= 0 then
    redis.call('HSET', K_CUST, reg, bit.bor(slot_mask(reg), bit.lshift(1, slot)))
  end
end
if mark ~= '' and redis.call('HGET', K_META, 'suspect') == mark then
  redis.call('HDEL', K_META, 'suspect')
end
return withdrawn
