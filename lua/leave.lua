-- leave: a shopper gives up their place in the queue, or the turn they were admitted
-- to and have not used, so nobody waits for a turn nobody will take. Leaving again
-- is the same as once.
-- KEYS: qpos qmeta window shopping left leftpre
-- ARGV: 1 registration id, 2 '1' when replayed into a rebuilt queue (counted before)
-- Returns {'ok', rank, how} (how: 'prequeue' (ranked by the draw, then given up),
-- 'waiting', 'turn', 'left' (before)), {'holding'} (a hold of the turn is live),
-- {'over'} (the turn has ended) or {'not-in-queue'}.
local reg, count = ARGV[1], ARGV[2] ~= '1'

local rank = redis.call('HGET', K_QPOS, reg)
if not rank then return {'not-in-queue'} end
rank = tonumber(rank)
if rank < 0 then
  if redis.call('SADD', K_LEFTPRE, reg) == 0 then return {'ok', -1, 'left'} end
  return {'ok', -1, 'prequeue'}
end
if redis.call('ZSCORE', K_LEFT, rank) then return {'ok', rank, 'left'} end
if rank < tonumber(redis.call('HGET', K_QMETA, 'admitted') or '0') then
  if redis.call('HEXISTS', K_SHOPPING, reg) == 1 then return {'holding'} end
  if redis.call('ZREM', K_WINDOW, rank) == 0 then return {'over'} end
  give_up(rank, count)
  return {'ok', rank, 'turn'}
end
give_up(rank, count)
return {'ok', rank, 'waiting'}
