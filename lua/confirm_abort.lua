-- confirm_abort: the Postgres step did not commit; settle the confirming hold.
-- KEYS: meta free holds expiry confirming cust held confirmed allocated evlog shopping
-- ARGV: 1 now_ms, 2 hold id, 3 why:
--   'retry'        transient failure: back to held, or released if its time ran out
--   'unit-taken'   Postgres has a live reservation on this unit: count it confirmed
--   'no-such-unit' Postgres has no such unit: drop it from stock
--   'slot-taken'   Postgres has the customer's slot in use: keep the slot, free the unit
-- Returns {'ok', outcome} or {'gone'}.
local now, hold_id, why = tonumber(ARGV[1]), ARGV[2], ARGV[3]

local raw = redis.call('HGET', K_HOLDS, hold_id)
if not raw then return {'gone'} end
local h = cjson.decode(raw)
if h.st ~= 'confirming' then return {'gone'} end
local pair = h.s .. ':' .. h.k

if why == 'retry' then
  if h.e > now then
    h.st, h.d = 'held', nil
    redis.call('HSET', K_HOLDS, hold_id, cjson.encode(h))
    redis.call('ZREM', K_CONFIRMING, hold_id)
    schedule_expiry(hold_id, h.e, redis.call('HGET', K_META, 'due'))
    return {'ok', 'held'}
  end
  drop_hold(hold_id, h, 'expired', now)
  return {'ok', 'expired'}
end

-- Postgres refused: Redis disagreed with the source of truth. Mark the launch suspect:
-- the sweeper withdraws every unit Postgres has sold that Redis still offers (stock/mend.py).
redis.call('HSET', K_META, 'suspect', now)
if why == 'slot-taken' then
  forget_hold(hold_id)
  redis.call('ZADD', K_FREE, 0, member(h.s, h.k, h.u))
  redis.call('HINCRBY', K_HELD, pair, -1)
  leave_shopping(h)
  log('refused', hold_id, h, now)
  return {'ok', 'released'}
end
forget_hold(hold_id)
redis.call('HINCRBY', K_HELD, pair, -1)
if why == 'unit-taken' then
  redis.call('HINCRBY', K_CONFIRMED, pair, 1)
else
  redis.call('HINCRBY', K_ALLOCATED, pair, -1)
end
free_slot(h.r, h.l)
leave_shopping(h)
log('refused', hold_id, h, now)
return {'ok', 'dropped'}
