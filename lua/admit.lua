-- admit: advance the admission counter lazily as a function of time.
--   admitted = min(qlen, admitted + rate * elapsed), further capped so that active
--   shoppers stay within `cap` and the admitted-but-not-yet-holding stay within the
--   free units (no point admitting people to nothing). Ranks admitted now get a window
--   to place a hold; windows past their time lapse and free their capacity.
-- KEYS: meta free fresh held qmeta window shopping
-- ARGV: 1 now_ms
-- Returns {phase, qlen, admitted, mrate_milli, sold_out, active, lapsed, window_ms,
--   restored_ms (when queue_restore last rebuilt this queue, 0 = never), rate_milli (set),
--   cap, free, choosing (admitted, no hold yet), admitting (1: drawn and selling)}.
local now = tonumber(ARGV[1])

local function num(field, default) return tonumber(redis.call('HGET', K_QMETA, field) or default) end
local phase = redis.call('HGET', K_QMETA, 'phase') or 'none'
local qlen, admitted = num('qlen', 0), num('admitted', 0)
local window_ms = num('window_ms', 120000)
local lapsed = num('lapsed', 0) + redis.call('ZREMRANGEBYSCORE', K_WINDOW, '-inf', now)

-- Sold out: nothing free and nothing held (a hold may lapse and give its unit back).
-- Holds are counted only when nothing is free, and only until the first: the held
-- hash has a field per (store, sku), and every admission tick of every worker runs this.
local free = free_count()
local sold_out = 0
if free == 0 and is_loaded() then
  sold_out = 1
  for _, n in ipairs(redis.call('HVALS', K_HELD)) do
    if n ~= '0' then sold_out = 0 break end
  end
end

local waiting_window = redis.call('ZCARD', K_WINDOW)
local active = waiting_window + redis.call('HLEN', K_SHOPPING)
local last = num('last_ms', now)
local credit = num('credit', admitted)
local rate, cap = num('rate', 0), num('cap', 0)
local admitting = phase == 'drawn' and redis.call('HGET', K_META, 'selling') == '1'
if admitting then
  local target = math.min(qlen, credit + rate * math.max(0, now - last) / 1000)
  local room = math.min(cap - active, free - waiting_window)
  local new = math.min(math.floor(target), admitted + math.max(0, room))
  for r = admitted, new - 1 do redis.call('ZADD', K_WINDOW, now + window_ms, r) end
  active = active + math.max(0, new - admitted)
  waiting_window = waiting_window + math.max(0, new - admitted)
  -- Capped: bank no credit, or a burst would follow when room comes back.
  if new < math.floor(target) then credit = new else credit = target end
  admitted = math.max(admitted, new)
else
  credit = admitted
end

-- Measured admission rate: a moving average over intervals of at least a second.
local mrate = tonumber(redis.call('HGET', K_QMETA, 'mrate') or '-1')
local mrate_t, mrate_base = num('mrate_t', now), num('mrate_base', admitted)
if now - mrate_t >= 1000 then
  local inst = (admitted - mrate_base) * 1000 / (now - mrate_t)
  if mrate < 0 then mrate = inst else mrate = 0.7 * mrate + 0.3 * inst end
  mrate_t, mrate_base = now, admitted
end
redis.call('HSET', K_QMETA, 'admitted', admitted, 'credit', credit, 'last_ms', now,
  'lapsed', lapsed, 'mrate', mrate, 'mrate_t', mrate_t, 'mrate_base', mrate_base)
return {phase, qlen, admitted, math.floor(mrate * 1000), sold_out, active, lapsed, window_ms,
  num('restored_ms', 0), math.floor(rate * 1000), cap, free, waiting_window, admitting and 1 or 0}
