-- move_unit: a reservation moved in Postgres from one unit to another (another store).
-- The old unit returns to stock; the new one, taken by move_begin, counts as confirmed.
-- Once per outbox id.
-- KEYS: meta free holds expiry confirming held confirmed applied shopping
-- ARGV: 1 outbox id, 2 old store, 3 sku, 4 old unit, 5 old hold id, 6 new store,
--       7 new hold id
-- Returns {'ok'} or {'duplicate'} or {'not-loaded'}.
local outbox_id, from, sku, unit = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local old_hold, to, new_hold = ARGV[5], ARGV[6], ARGV[7]

if not is_loaded() then return {'not-loaded'} end
if redis.call('SADD', K_APPLIED, outbox_id) == 0 then return {'duplicate'} end
redis.call('ZADD', K_FREE, 0, member(from, sku, unit))
-- As in return_unit: a hold whose confirm_end never reached Redis still counts as held.
local raw = redis.call('HGET', K_HOLDS, old_hold)
if raw then
  forget_hold(old_hold)
  leave_shopping(cjson.decode(raw))
  redis.call('HINCRBY', K_HELD, from .. ':' .. sku, -1)
else
  redis.call('HINCRBY', K_CONFIRMED, from .. ':' .. sku, -1)
end
-- Gone already: the reconciler confirmed it, or a cancel returned it (it settled it).
if redis.call('HEXISTS', K_HOLDS, new_hold) == 1 then
  forget_hold(new_hold)
  redis.call('HINCRBY', K_HELD, to .. ':' .. sku, -1)
  redis.call('HINCRBY', K_CONFIRMED, to .. ':' .. sku, 1)
end
return {'ok'}
