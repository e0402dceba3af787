-- confirm_end: Postgres committed the reservations; the held units become confirmed.
-- Each customer's slot stays taken (now by the reservation). Several holds of the
-- launch in one call (a confirm batch).
-- KEYS: holds expiry confirming held confirmed evlog shopping
-- ARGV: 1 now_ms, 2.. hold ids
-- Returns a reply per hold, in order: {'ok'}, or {'gone'} when another confirm or the
-- reconciler settled it first.
local now = tonumber(ARGV[1])

local function finish(hold_id)
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
end

local out = {}
for i = 2, #ARGV do out[#out + 1] = finish(ARGV[i]) end
return out
