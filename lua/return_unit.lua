-- return_unit: a reservation cancelled or released in Postgres gives its unit back
-- to stock and its slot back to the customer, once per outbox id.
-- KEYS: meta free holds expiry confirming cust held confirmed applied shopping
-- ARGV: 1 outbox id, 2 store, 3 sku, 4 unit, 5 registration id, 6 slot, 7 hold id
-- Returns {'ok'} or {'duplicate'} or {'not-loaded'}.
local outbox_id, store, sku = ARGV[1], ARGV[2], ARGV[3]
local unit, reg, slot, hold_id = tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6]), ARGV[7] or ''

if not is_loaded() then return {'not-loaded'} end
if redis.call('SADD', K_APPLIED, outbox_id) == 0 then return {'duplicate'} end
redis.call('ZADD', K_FREE, 0, member(store, sku, unit))
-- If confirm_end never reached Redis, the reservation's hold is still here, counted as
-- held: settle it, or its unit would be free and held at once (and confirmed < 0).
local raw = hold_id ~= '' and redis.call('HGET', K_HOLDS, hold_id)
if raw then
  forget_hold(hold_id)
  leave_shopping(cjson.decode(raw))
  redis.call('HINCRBY', K_HELD, store .. ':' .. sku, -1)
else
  redis.call('HINCRBY', K_CONFIRMED, store .. ':' .. sku, -1)
end
free_slot(reg, slot)
return {'ok'}
