-- checkin: one place per registration. Before the draw a check-in joins the
-- pre-queue (rank -1, ordered later by the draw); after it, the tail of the queue.
-- Checking in again returns the same place. Every first check-in appends
-- "reg|rank" to placelog (rank -1 in the pre-queue), which the sweeper copies into
-- the audit trail (and the ranks into queue_places).
-- A rank is given only below qmeta 'ceil', a ceiling Postgres already keeps
-- (queue_state.rank_ceiling), so a Redis lost before the sweeper copied the newest
-- places comes back with its queue past every rank a ticket can name, and gives none
-- twice. At the ceiling the script answers {'need-ceiling', qlen}: the caller raises
-- the ceiling in Postgres and calls again, passing it.
-- KEYS: qpos prequeue qmeta qrank placelog left leftpre
-- ARGV: 1 now_ms, 2 registration id, 3 a ceiling Postgres keeps now (optional)
-- Returns {'ok', rank}, {'closed'} when check-in is not open, {'not-invited'},
-- {'need-ceiling', qlen}, or {'left', rank} when the registration gave its place up.
local now, reg, raised = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3] or '')

local rank = redis.call('HGET', K_QPOS, reg)
if rank then
  local gone
  if rank == '-1' then gone = redis.call('SISMEMBER', K_LEFTPRE, reg) == 1
  else gone = redis.call('ZSCORE', K_LEFT, rank) end
  return {gone and 'left' or 'ok', tonumber(rank)}
end
local q = redis.call('HMGET', K_QMETA, 'phase', 'invite_only', 'qlen', 'ceil')
local phase = q[1]
if not phase then return {'closed'} end
-- A lottery's queue holds only those it invited (placed by invite.lua).
if q[2] == '1' then return {'not-invited'} end
if phase ~= 'drawn' then
  redis.call('RPUSH', K_PREQUEUE, reg)  -- once: qpos above turns a second check-in back
  redis.call('HSET', K_QPOS, reg, -1)
  redis.call('RPUSH', K_PLACELOG, reg .. '|-1')
  return {'ok', -1}
end
local qlen, ceil = tonumber(q[3] or '0'), tonumber(q[4] or '0')
if raised and raised > ceil then
  ceil = raised
  redis.call('HSET', K_QMETA, 'ceil', ceil)
end
if qlen >= ceil then return {'need-ceiling', qlen} end
rank = qlen
redis.call('HSET', K_QMETA, 'qlen', qlen + 1)
redis.call('HSET', K_QPOS, reg, rank)
redis.call('HSET', K_QRANK, rank, reg)
redis.call('RPUSH', K_PLACELOG, reg .. '|' .. rank)
return {'ok', rank}
