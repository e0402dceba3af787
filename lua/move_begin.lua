-- move_begin: take a free unit of (store, sku) for a reservation moving there, under
-- a new hold that is *confirming* at once (it cannot expire) and has no limit slot (the
-- reservation keeps its own). Postgres moves the reservation to this hold and unit, and
-- move_unit settles it. If Postgres does not, it is settled like any confirming hold:
-- confirm_abort 'retry' returns the unit (its time is up), so does the reconciler.
-- KEYS: meta free fresh holds expiry confirming cust held allocated evlog shopping
-- ARGV: 1 now_ms, 2 hold id, 3 registration id, 4 store, 5 sku, 6 deadline_ms
-- Returns {'ok', unit} or {'sold-out'} / {'unknown-item'} / {'not-loaded'}.
local now, hold_id, reg = tonumber(ARGV[1]), ARGV[2], ARGV[3]
local store, sku, deadline = ARGV[4], ARGV[5], tonumber(ARGV[6])
local pair = store .. ':' .. sku

if not is_loaded() then return {'not-loaded'} end
if redis.call('HEXISTS', K_ALLOCATED, pair) == 0 then return {'unknown-item'} end
local unit, member = find_unit(pair)
if unit == nil then
  expire_due(now, -1)
  unit, member = find_unit(pair)
end
if unit == nil then return {'sold-out'} end

local unit_no = tonumber(unit)
local h = {r = reg, s = store, k = sku, u = unit_no, e = now, st = 'confirming', d = deadline}
take_unit(pair, member)
redis.call('HSET', K_HOLDS, hold_id, cjson.encode(h))
redis.call('ZADD', K_CONFIRMING, deadline, hold_id)
redis.call('HINCRBY', K_HELD, pair, 1)
return {'ok', unit_no}
