-- draw_finish: the drawn order is written to qpos (ranks 0..entrants-1); open the
-- queue. Then rank, in arrival order, those checked in outside the draw's roster
-- (ARGV 2..) and whoever checked in while the draw ran; give up the ranks of those who
-- left the pre-queue.
-- KEYS: qpos prequeue drawset qmeta qrank placelog left leftpre
-- ARGV: 1 entrants, 2.. registrations to rank right after them
-- Returns {'ok', qlen}.
local entrants = tonumber(ARGV[1])

local qlen = entrants
local function append(reg)
  redis.call('HSET', K_QPOS, reg, qlen)
  redis.call('HSET', K_QRANK, qlen, reg)
  redis.call('RPUSH', K_PLACELOG, reg .. '|' .. qlen)  -- not in the draw's stored order
  qlen = qlen + 1
end
for i = 2, #ARGV do append(ARGV[i]) end
for _, reg in ipairs(redis.call('LRANGE', K_PREQUEUE, 0, -1)) do append(reg) end
redis.call('DEL', K_PREQUEUE, K_DRAWSET)
for _, reg in ipairs(redis.call('SMEMBERS', K_LEFTPRE)) do
  local rank = tonumber(redis.call('HGET', K_QPOS, reg) or '-1')
  if rank >= 0 then give_up(rank, true) end
end
redis.call('DEL', K_LEFTPRE)
redis.call('HSET', K_QMETA, 'phase', 'drawn', 'qlen', qlen)
return {'ok', qlen}
