-- confirm_overdue: holds left *confirming* past their deadline (a confirm or a move
-- whose process died, or whose Postgres step got no answer), oldest first, with what
-- each one's reservation claims, for the reconciler to settle.
-- KEYS: holds confirming
-- ARGV: 1 now_ms, 2 at most this many
-- Returns {hold id, registration, store, sku, unit, slot} per hold; slot -1: a move's.
local now, max = tonumber(ARGV[1]), tonumber(ARGV[2])

local out = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', K_CONFIRMING, '-inf', now, 'LIMIT', 0, max)) do
  local raw = redis.call('HGET', K_HOLDS, id)
  if raw then
    local h = cjson.decode(raw)
    out[#out + 1] = {id, tostring(h.r), h.s, h.k, h.u, h.l or -1}
  else
    redis.call('ZREM', K_CONFIRMING, id)
  end
end
return out
