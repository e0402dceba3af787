-- checkin: one place per registration. Before the draw a check-in joins the
-- pre-queue (rank -1, ordered later by the draw); after it, the tail of the queue.
-- Checking in again returns the same place.
-- KEYS: qpos prequeue qmeta qrank placelog
-- ARGV: 1 now_ms, 2 registration id
-- Returns {'ok', rank}, {'closed'} when check-in is not open, or {'not-invited'}.
local now, reg = tonumber(ARGV[1]), ARGV[2]

local rank = redis.call('HGET', K_QPOS, reg)
if rank then return {'ok', tonumber(rank)} end
local phase = redis.call('HGET', K_QMETA, 'phase')
if not phase then return {'closed'} end
-- A lottery's queue holds only those it invited (placed by invite.lua).
if redis.call('HGET', K_QMETA, 'invite_only') == '1' then return {'not-invited'} end
if phase ~= 'drawn' then
  redis.call('RPUSH', K_PREQUEUE, reg)  -- once: qpos above turns a second check-in back
  redis.call('HSET', K_QPOS, reg, -1)
  return {'ok', -1}
end
rank = redis.call('HINCRBY', K_QMETA, 'qlen', 1) - 1
redis.call('HSET', K_QPOS, reg, rank)
redis.call('HSET', K_QRANK, rank, reg)
redis.call('RPUSH', K_PLACELOG, reg .. '|' .. rank)
return {'ok', rank}
