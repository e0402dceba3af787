-- withdraw_units: take n free units of (store, sku) out of stock, all or none,
-- so that Postgres can delete them. Never touches held or confirmed units.
-- KEYS: meta free fresh holds expiry confirming cust held allocated evlog shopping
-- ARGV: 1 now_ms, 2 "store:sku", 3 n
-- Returns {'ok', first, end, unit...} (the run's top [first, end), then free-set units)
-- or {'short', free count} or {'not-loaded'}.
local now, pair, n = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])

if not is_loaded() then return {'not-loaded'} end
expire_due(now, -1)
local lo, hi = '[' .. pair .. ':', '(' .. pair .. ';'
local run = redis.call('HMGET', K_FRESH, pair .. ':n', pair .. ':t')
local first, top = tonumber(run[1] or 0), tonumber(run[2] or 0)
local fresh = math.max(0, top - first)
local free = fresh + redis.call('ZLEXCOUNT', K_FREE, lo, hi)
if free < n then return {'short', free} end
-- Highest unit numbers first, so allocations shrink from the top: the fresh run's end,
-- then the free set (all of it below the run).
local from_run = math.min(n, fresh)
local out = {'ok', top - from_run, top}
if from_run > 0 then
  redis.call('HSET', K_FRESH, pair .. ':t', string.format('%d', top - from_run))
  redis.call('HINCRBY', K_FRESH, '#', string.format('%d', -from_run))
end
if n > from_run then
  for _, m in ipairs(redis.call('ZREVRANGEBYLEX', K_FREE, hi, lo, 'LIMIT', 0, n - from_run)) do
    redis.call('ZREM', K_FREE, m)
    out[#out + 1] = tonumber(string.sub(m, #pair + 2))
  end
end
redis.call('HINCRBY', K_ALLOCATED, pair, -n)
return out
