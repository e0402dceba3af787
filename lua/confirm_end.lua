-- confirm_end: Postgres committed the reservation; the held unit becomes confirmed.
-- The customer's slot stays taken (now by the reservation).
-- KEYS: holds expiry confirming held confirmed evlog shopping
-- ARGV: 1 now_ms, 2 hold id
-- Returns {'ok'} or {'gone'} when another confirm or the reconciler settled it first.
local now, hold_id = tonumber(ARGV[1]), ARGV[2]

local raw = redis.call('HGET', K_HOLDS, hold_id)
if not raw then return {'gone'} end
local h = cjson.decode(raw)
if h.st ~= 'confirming' then return {'gone'} end
local pair = h.s .. ':' .. h.k
forget_hold(hold_id)
redis.call('HINCRBY', K_HELD, pair, -1)
redis.call('HINCRBY', K_CONFIRMED, pair, 1)
leave_shopping(h)
log('confirmed', hold_id, h, now)
return {'ok'}
