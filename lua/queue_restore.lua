-- queue_restore: give a launch that Redis lost its queue back, from Postgres's last
-- saved counters. The most recently admitted ranks (up to the active cap) get a fresh
-- window, since who among them was still shopping is lost with Redis.
-- Does nothing if the queue is there (someone restored it first). `restored_ms` tells
-- workers that pre-queue tickets issued before it may name check-ins Redis lost.
-- KEYS: qmeta window
-- ARGV: 1 now_ms, 2 phase, 3 qlen, 4 admitted, 5 lapsed, 6 window_ms, 7 active cap
-- Returns 1 if restored, 0 if the queue was there.
local now, phase = tonumber(ARGV[1]), ARGV[2]
local qlen, admitted, lapsed = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local window_ms, cap = tonumber(ARGV[6]), tonumber(ARGV[7])

if redis.call('HEXISTS', K_QMETA, 'phase') == 1 then return 0 end
redis.call('HSET', K_QMETA, 'phase', phase, 'qlen', qlen, 'admitted', admitted,
  'credit', admitted, 'lapsed', lapsed, 'last_ms', now, 'restored_ms', now)
for r = math.max(0, admitted - cap), admitted - 1 do
  redis.call('ZADD', K_WINDOW, now + window_ms, r)
end
return 1
