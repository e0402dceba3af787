-- withdraw_units: take n free units of (store, sku) out of stock, all or none,
-- so that Postgres can delete them. Never touches held or confirmed units.
-- KEYS: meta free holds expiry confirming cust held allocated evlog shopping
-- ARGV: 1 now_ms, 2 "store:sku", 3 n
-- Returns {'ok', unit...} or {'short', free count} or {'not-loaded'}.
local now, pair, n = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])

if not is_loaded() then return {'not-loaded'} end
expire_due(now, -1)
local lo, hi = '[' .. pair .. ':', '(' .. pair .. ';'
local free = redis.call('ZLEXCOUNT', K_FREE, lo, hi)
if free < n then return {'short', free} end
-- Highest unit numbers first, so allocations shrink from the top.
local members = redis.call('ZREVRANGEBYLEX', K_FREE, hi, lo, 'LIMIT', 0, n)
local out = {'ok'}
for _, m in ipairs(members) do
  redis.call('ZREM', K_FREE, m)
  out[#out + 1] = tonumber(string.sub(m, #pair + 2))
end
redis.call('HINCRBY', K_ALLOCATED, pair, -n)
return out
