-- admit: advance the admission counter lazily as a function of time.
--   admitted = min(qlen, admitted + rate * elapsed), further capped so that active
--   shoppers stay within `cap` and the admitted-but-not-yet-holding stay within the
--   free units (no point admitting people to nothing). Ranks admitted now get a window
--   to place a hold; windows past their time lapse and free their capacity.
--   A rank given up (left) is passed by: it takes no window, room or unit.
-- KEYS: meta free fresh held qmeta window shopping left leftpre
-- ARGV: 1 now_ms
-- Returns {phase, qlen, admitted, sold_out, active, lapsed, window_ms,
--   restored_ms (when queue_restore last rebuilt this queue, 0 = never), rate_milli (set),
--   cap, free, choosing (admitted, no hold yet), admitting (1: drawn and selling),
--   nleft (ranks given up so far), loaded (1: the launch's stock is in Redis),
--   nleftpre (registrations that left the pre-queue, until the draw gives up their ranks)}.
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
local loaded = is_loaded()
local sold_out = 0
if free == 0 and loaded then
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
local nleft = num('nleft', 0)
if admitting then
  local target = math.min(qlen, credit + rate * math.max(0, now - last) / 1000)
  local room = math.min(cap - active, free - waiting_window)
  local new, upto = admitted, math.floor(target)
  while new < upto do
    if not (nleft > 0 and redis.call('ZSCORE', K_LEFT, new)) then
      if room <= 0 then break end
      redis.call('ZADD', K_WINDOW, now + window_ms, new)
      room, active, waiting_window = room - 1, active + 1, waiting_window + 1
    end
    new = new + 1
  end
  -- Capped: bank no credit, or a burst would follow when room comes back.
  if new < upto then credit = new else credit = target end
  admitted = math.max(admitted, new)
else
  credit = admitted
end

-- (The pace admission keeps is measured by each worker, from these counts over time:
-- service/queue/eta.py.)
redis.call('HSET', K_QMETA, 'admitted', admitted, 'credit', credit, 'last_ms', now,
  'lapsed', lapsed)
return {phase, qlen, admitted, sold_out, active, lapsed, window_ms,
  num('restored_ms', 0), math.floor(rate * 1000), cap, free, waiting_window, admitting and 1 or 0,
  nleft, loaded and 1 or 0, redis.call('SCARD', K_LEFTPRE)}
