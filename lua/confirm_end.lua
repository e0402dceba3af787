-- confirm_end: Postgres committed the reservations; the held units become confirmed.
-- Each customer's slot stays taken (now by the reservation). A turn goes on after a
-- confirmation while the customer may take more: their rank gets a fresh window to
-- choose the next (the limit bounds how often). Several holds of the launch in one
-- call (a confirm batch).
-- KEYS: meta holds expiry confirming cust held confirmed evlog qmeta window shopping
-- ARGV: 1 now_ms, 2.. hold ids
-- Returns a reply per hold, in order: {'ok'}, or {'gone'} when another confirm or the
-- reconciler settled it first.
local now = tonumber(ARGV[1])
local limit = tonumber(redis.call('HGET', K_META, 'limit') or '1')
local window_ms = tonumber(redis.call('HGET', K_QMETA, 'window_ms') or '120000')

local function go_on(h)
  if type(h.q) ~= 'number' or redis.call('HEXISTS', K_SHOPPING, h.r) == 1 then return end
  if redis.call('HGET', K_META, 'selling') ~= '1' then return end
  local mask = slot_mask(h.r)
  for i = 0, limit - 1 do
    if bit.band(mask, bit.lshift(1, i)) == 0 then
      redis.call('ZADD', K_WINDOW, now + window_ms, string.format('%d', h.q))
      return
    end
  end
end

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
  go_on(h)
  log('confirmed', hold_id, h, now)
  return {'ok'}
end

local out = {}
for i = 2, #ARGV do out[#out + 1] = finish(ARGV[i]) end
return out
