-- reserve: hold one unit of (store, sku) for a registration.
-- A shopper from the queue must be admitted: their rank's window still open, or
-- already shopping (holding). Staff channels vouch for the customer (no rank): they
-- skip the queue, never the limit or the stock.
-- KEYS: meta free fresh holds expiry confirming cust held allocated evlog window shopping
-- ARGV: 1 now_ms, 2 hold id, 3 registration id, 4 store, 5 sku, 6 rank ('' = vouched)
-- Returns 'ok <unit> <slot> <expires_ms>' or an
-- error type: one string, since Redis turns a table into its reply at several times
-- what a string costs it (~3 us a hold).
local now, hold_id, reg = ARGV[1] + 0, ARGV[2], ARGV[3]
local store, sku, rank = ARGV[4], ARGV[5], ARGV[6] or ''
local pair = store .. ':' .. sku

local meta = redis.call('HMGET', K_META, 'loaded', 'selling', 'limit', 'hold_ms', 'due')
if meta[1] ~= '1' then return 'not-loaded' end
local due = expire_if_due(now, 64, meta[5])
if meta[2] ~= '1' then return 'launch-not-selling' end
local queued = rank ~= ''
local shopping = queued and redis.call('HEXISTS', K_SHOPPING, reg) == 1
if queued and not shopping then
  local deadline = redis.call('ZSCORE', K_WINDOW, rank)
  if not deadline or deadline + 0 <= now then return 'not-admitted' end
end

-- The customer's first free limit slot and the first free unit; if either is missing,
-- holds past their time may still pin them: release them all and look once more.
local limit = meta[3] + 0
local slot, mask, unit, member
for attempt = 1, 2 do
  mask, slot = slot_mask(reg), nil
  for i = 0, limit - 1 do
    if bit.band(mask, bit.lshift(1, i)) == 0 then slot = i break end
  end
  unit, member = find_unit(pair)
  if (slot and unit) or attempt == 2 then break end
  expire_due(now, -1)
end
-- A free unit proves the item exists; only a refusal pays to ask.
if unit == nil and redis.call('HEXISTS', K_ALLOCATED, pair) == 0 then return 'unknown-item' end
if slot == nil then return 'limit-reached' end
if unit == nil then return 'sold-out' end

-- Numbers go into text by string.format('%d') (see _shared.lua).
local expires = now + meta[4]
local expires_s, slot_s = string.format('%d', expires), string.format('%d', slot)
-- The hold's JSON by hand: what cjson.encode gave, at a fraction of its cost. Nothing
-- needs escaping: a free unit under this pair proves both ids are real ones (item ids
-- are [A-Za-z0-9_-], checked when they were made; a fresh run is kept only for such a
-- pair), a registration id is digits, and a rank (from a signed ticket) a number.
if not string.find(reg, '^%d+$') then return redis.error_reply('reserve: bad registration id') end
local record = '{"r":"' .. reg .. '","s":"' .. store .. '","k":"' .. sku .. '","u":'
  .. unit .. ',"l":' .. slot_s .. ',"e":' .. expires_s
  .. ',"st":"held","q":' .. (queued and rank or 'false') .. '}'
-- The first write, so a (vanishingly unlikely) reused hold id changes nothing.
if redis.call('HSETNX', K_HOLDS, hold_id, record) == 0 then return 'duplicate-hold' end
take_unit(pair, member)
schedule_expiry(hold_id, expires, due, expires_s)
redis.call('HINCRBY', K_HELD, pair, '1')
redis.call('HSET', K_CUST, reg, string.format('%d', bit.bor(mask, bit.lshift(1, slot))))
if queued then
  -- The admission is used: the shopper stays active while they hold anything.
  if not shopping then redis.call('ZREM', K_WINDOW, rank) end
  redis.call('HINCRBY', K_SHOPPING, reg, '1')
end
log_event('held', hold_id, reg, store, sku, ARGV[1])
return 'ok ' .. unit .. ' ' .. slot_s .. ' ' .. expires_s
