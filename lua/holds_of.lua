-- holds_of: one registration's live holds, for its self-service view. Reads only.
-- The customer's slot mask counts holds and live reservations together, so the
-- launch's holds are scanned only when it shows more slots in use than `live`
-- (the live reservations Postgres knows): the usual answer costs one lookup.
-- KEYS: holds cust
-- ARGV: 1 now_ms, 2 registration id, 3 live reservations of the registration
-- Returns {hold id, store, sku, expires_ms, state, ...}, five entries per hold.
local now, reg, live = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])

local mask, used = slot_mask(reg), 0
while mask > 0 do
  used = used + bit.band(mask, 1)
  mask = bit.rshift(mask, 1)
end
if used <= live then return {} end
local out = {}
local all = redis.call('HGETALL', K_HOLDS)
for i = 1, #all, 2 do
  local h = cjson.decode(all[i + 1])
  if tostring(h.r) == reg and (h.st ~= 'held' or h.e > now) then
    for _, v in ipairs({all[i], h.s, h.k, h.e, h.st}) do out[#out + 1] = v end
  end
end
return out
