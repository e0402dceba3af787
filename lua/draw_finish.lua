-- draw_finish: the drawn order is written to qpos (ranks 0..entrants-1); open the
-- queue and rank whoever checked in during the draw behind, in arrival order.
-- ARGV: 1 entrants
-- Returns {'ok', qlen}.
local entrants = tonumber(ARGV[1])

local qlen = entrants
local late = redis.call('ZRANGE', K_PREQUEUE, 0, -1)
for _, reg in ipairs(late) do
  redis.call('HSET', K_QPOS, reg, qlen)
  qlen = qlen + 1
end
redis.call('DEL', K_PREQUEUE, K_DRAWSET)
redis.call('HSET', K_QMETA, 'phase', 'drawn', 'qlen', qlen)
return {'ok', qlen}
