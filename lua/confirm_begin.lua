-- confirm_begin: live holds become "confirming" until deadline_ms; they can no
-- longer expire. Two confirms of one hold both get 'ok' (Postgres keys by hold id).
-- Several holds of the launch in one call (a confirm batch), each with its own answer.
-- KEYS: meta free holds expiry confirming cust held evlog shopping
-- ARGV: 1 now_ms, 2 deadline_ms, then per hold: hold id, registration id
-- Returns {'not-loaded'}, or a reply per hold, in order:
--   {'ok', store, sku, unit, slot} or {error type}.
local now, deadline = tonumber(ARGV[1]), tonumber(ARGV[2])

if not is_loaded() then return {'not-loaded'} end

local function begin(hold_id, reg)
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
end

local out = {}
for i = 3, #ARGV - 1, 2 do out[#out + 1] = begin(ARGV[i], ARGV[i + 1]) end
return out
