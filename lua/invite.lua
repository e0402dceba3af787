-- invite: the lottery's invitations become places in the queue. Only an invited
-- registration checks in from now on (rank = its index in the lottery's order).
-- Idempotent: the same (registration, rank) pairs may come again.
-- KEYS: qpos qmeta qrank
-- ARGV: 1 qlen (places invited so far; -1 = leave phase and length alone),
--       2.. registration, rank, registration, rank, ...
-- Returns {'ok', qlen}.
local qlen = tonumber(ARGV[1])

redis.call('HSET', K_QMETA, 'invite_only', 1)
for i = 2, #ARGV, 2 do
  redis.call('HSET', K_QPOS, ARGV[i], ARGV[i + 1])
  redis.call('HSET', K_QRANK, ARGV[i + 1], ARGV[i])
end
if qlen >= 0 then
  local now_len = tonumber(redis.call('HGET', K_QMETA, 'qlen') or '0')
  redis.call('HSET', K_QMETA, 'qlen', math.max(qlen, now_len))
  redis.call('HSETNX', K_QMETA, 'phase', 'drawn')
end
return {'ok', tonumber(redis.call('HGET', K_QMETA, 'qlen') or '0')}
