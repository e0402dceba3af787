-- confirm_begin: a live hold becomes "confirming" until deadline_ms; it can no
-- longer expire. Two confirms of one hold both get 'ok' (Postgres keys by hold id).
-- KEYS: meta free holds expiry confirming cust held evlog shopping
-- ARGV: 1 now_ms, 2 hold id, 3 registration id, 4 deadline_ms
-- Returns {'ok', store, sku, unit, slot} or {error type}.
local now, hold_id, reg, deadline = tonumber(ARGV[1]), ARGV[2], ARGV[3], tonumber(ARGV[4])

if not is_loaded() then return {'not-loaded'} end
local raw = redis.call('HGET', K_HOLDS, hold_id)
if not raw then return {'hold-not-found'} end
local h = cjson.decode(raw)
if h.r ~= reg then return {'hold-not-found'} end
if h.st == 'held' then
  if h.e <= now then
    drop_hold(hold_id, h, 'expired', now)
    return {'hold-expired'}
  end
  h.st, h.d = 'confirming', deadline
  redis.call('HSET', K_HOLDS, hold_id, cjson.encode(h))
  redis.call('ZREM', K_EXPIRY, hold_id)
  redis.call('ZADD', K_CONFIRMING, deadline, hold_id)
end
return {'ok', h.s, h.k, h.u, h.l}
