-- release: the shopper gives a held unit back.
-- KEYS: meta free holds expiry confirming cust held evlog shopping
-- ARGV: 1 now_ms, 2 hold id, 3 registration id
-- Returns {'ok'} or {error type}.
local now, hold_id, reg = tonumber(ARGV[1]), ARGV[2], ARGV[3]

if not is_loaded() then return {'not-loaded'} end
expire_due(now, 64)
local raw = redis.call('HGET', K_HOLDS, hold_id)
if not raw then return {'hold-not-found'} end
local h = cjson.decode(raw)
if h.r ~= reg then return {'hold-not-found'} end
if h.st ~= 'held' then return {'hold-confirming'} end
drop_hold(hold_id, h, 'released', now)
return {'ok'}
